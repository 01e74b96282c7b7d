"""Named limits of the sanitiser, with their units in their names.

Every limit here is enforced; none is advisory. Changing one changes what an attachment may
contain, so each carries the reason for its value.
"""

from __future__ import annotations

#: Largest attachment accepted (PRODUCT.md: "a file of at most 20 MiB"). Checked before parsing.
MAX_INPUT_BYTES = 20 * 1024 * 1024

#: Largest rendition the sandbox may write (images re-encoded as PNG can grow).
MAX_OUTPUT_BYTES = 64 * 1024 * 1024

#: Largest report (JSON) accepted back from the sandbox.
MAX_REPORT_BYTES = 2 * 1024 * 1024

#: Removed items listed in one report; further ones are counted, not listed.
MAX_REPORT_ITEMS = 500

#: Longest `where` string kept in a report item.
MAX_WHERE_CHARS = 300

# --- archives (ZIP attachments and OOXML packages) ---------------------------------------

#: Largest uncompressed/compressed ratio of one entry (zip bombs compress ~1000:1).
ZIP_MAX_RATIO = 200

#: Entries in one archive (OOXML packages included).
ZIP_MAX_ENTRIES = 10_000

#: Total uncompressed bytes read from one archive, nested archives included.
ZIP_MAX_TOTAL_BYTES = 256 * 1024 * 1024

#: Uncompressed bytes of one entry.
ZIP_MAX_ENTRY_BYTES = 128 * 1024 * 1024

#: Nesting of archives inside archives (a ZIP in a ZIP is depth 2).
ZIP_MAX_DEPTH = 3

#: Entries below which the ratio limit does not apply (tiny entries compress oddly).
ZIP_RATIO_MIN_BYTES = 1024 * 1024

# --- XML ---------------------------------------------------------------------------------

#: Uncompressed bytes of one XML part parsed into a tree.
XML_MAX_PART_BYTES = 128 * 1024 * 1024

# --- images --------------------------------------------------------------------------------

#: Pixels in one image (a 48 MP phone photo is 48e6); larger is a pixel bomb and is blocked.
MAX_IMAGE_PIXELS = 64_000_000

#: Pixels decoded from all the images of one input (pictures in a document or an archive).
MAX_TOTAL_IMAGE_PIXELS = 256_000_000

#: Pictures re-encoded in one OOXML document; more blocks the document.
OOXML_MAX_PICTURES = 2_000

#: Frames read from an animated image (only the first is kept).
MAX_IMAGE_FRAMES = 1

# --- PDF -----------------------------------------------------------------------------------

#: Indirect objects in one PDF.
PDF_MAX_OBJECTS = 500_000

# --- RTF -----------------------------------------------------------------------------------

#: Group nesting in RTF.
RTF_MAX_DEPTH = 512

# --- text ----------------------------------------------------------------------------------

#: Cells neutralised in one CSV before the report stops listing them.
CSV_MAX_REPORTED_CELLS = 50

# --- sandbox -------------------------------------------------------------------------------

#: Wall-clock time for one file; the whole process group is killed after it.
SANDBOX_TIMEOUT_S = 30.0

#: CPU seconds for one file (RLIMIT_CPU).
SANDBOX_CPU_S = 30

#: Address space of the child (RLIMIT_AS); the libraries alone map ~300 MiB.
SANDBOX_MEMORY_BYTES = 1536 * 1024 * 1024

#: Largest file the child may write (RLIMIT_FSIZE).
SANDBOX_FILE_BYTES = MAX_OUTPUT_BYTES + MAX_REPORT_BYTES

#: Open files in the child (RLIMIT_NOFILE).
SANDBOX_MAX_OPEN_FILES = 256

# --- worker --------------------------------------------------------------------------------

#: Jobs processed at once by one worker (each in its own sandboxed child).
WORKER_CONCURRENCY = 2

#: Jobs waiting in the in-process (memory://) queue.
MEMORY_QUEUE_MAX_JOBS = 1000

#: A job pending this long without a heartbeat is taken over by another worker.
JOB_CLAIM_IDLE_MS = 60_000

#: How often a worker refreshes the jobs it holds and looks for abandoned ones.
JOB_HEARTBEAT_S = 5.0

#: Deliveries of one job before it is given up (blocked with `worker_failed`).
JOB_MAX_DELIVERIES = 5

#: Entries kept in the results stream (approximate trim).
RESULTS_STREAM_MAXLEN = 100_000

#: How long a job's result key lives in Redis.
RESULT_TTL_S = 7 * 24 * 3600

# The sandboxed child runs at a lower CPU priority than the app it shares cores with.
SANDBOX_NICE = 10
