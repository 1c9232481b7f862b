#!/bin/sh
# LAKSA sample: the latest reports, newest first. The reporter's contact is never shown;
# every stored field is escaped for HTML before it is written out.
# shellcheck source=../../lib/laksa.sh
. /usr/local/lib/laksa.sh
SHOWN=50

COUNT=0
ROWS=""
if [ -r "$REPORTS" ]; then
    COUNT=$(wc -l <"$REPORTS")
    # Escaping the whole line first leaves the tabs that separate the fields alone.
    ROWS=$(tail -n "$SHOWN" "$REPORTS" | tac | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' \
        -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' -e "s/'/\&#39;/g" | awk -F '\t' '
        NF >= 6 {
            printf "      <li class=\"report\"><p class=\"meta\"><strong class=\"ticket-id\">%s</strong>", $1
            printf " &middot; %s &middot; %s &middot; %s</p>\n", $2, $5, $3
            printf "        <p>%s</p></li>\n", $6
        }')
fi

if [ -n "$ROWS" ]; then
    LIST="    <p>$(text "$COUNT laporan tersimpan; paling banyak $SHOWN yang terbaru ditampilkan." "$COUNT reports stored; at most the $SHOWN latest are shown.")</p>
    <ol class=\"reports\">
$ROWS
    </ol>"
else
    LIST="    <p>$(text "Belum ada laporan." "No reports yet.")</p>"
fi
page "200 OK" "$(text "Laporan warga" "Citizens' reports")" "$LIST"
