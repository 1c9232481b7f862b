#!/bin/sh
# LAKSA sample: healthy when reports can be stored. A file is really written to the
# data folder (permission bits alone miss a read-only mount), then removed.
DATA_DIR=${LAKSA_DATA_DIR:-/var/lib/laksa}
REPORTS="$DATA_DIR/laporan.tsv"
PROBE="$DATA_DIR/.health-$$"
if (: >"$PROBE") 2>/dev/null && rm -f "$PROBE" && { [ ! -e "$REPORTS" ] || [ -w "$REPORTS" ]; }; then
    printf 'Status: 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n\r\nok\n'
else
    printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n\r\n'
    printf 'reports cannot be stored: the data folder is not writable\n'
fi
