"""Attachment storage (issue 5).

``blobs``   the ``BlobStore`` interface, ``LocalBlobStore`` and ``make_blob_store`` (by URL)
``s3``      ``S3BlobStore``, for an S3-compatible object store (imported only when used)
``uploads`` ``receive_upload``: an untrusted stream into a store, capped while it is read
``orphans`` ``collect_orphans``: deleting blobs nothing references
``errors``  ``StorageError`` and its codes

Nothing here imports ``chat``; see docs/storage.md.
"""
