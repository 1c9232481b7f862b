#!/bin/sh
# LAKSA sample: receive a report from the form on /, store it and give it a ticket number.
# Form fields are only ever data: decoded with printf %b, never evaluated, capped in
# size, stored on one line without control characters, escaped when shown.
# shellcheck source=../../lib/laksa.sh
. /usr/local/lib/laksa.sh
MAX_BODY=65536
MAX_STORED=$((8 * 1024 * 1024)) # the reports file stops growing at this size

# field NAME MAX-BYTES: one form field of the url-encoded body, decoded, on one line,
# without control characters, at most MAX-BYTES long.
field() {
    raw=$(printf '%s' "$BODY" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1)
    raw=$(printf '%s' "$raw" | sed -e 's/\\/\\\\/g' -e 's/+/ /g' \
        -e 's/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')
    printf '%b' "$raw" | tr '\t\r\n' '   ' | tr -d '\000-\037\177' | head -c "$2"
}

if [ "${REQUEST_METHOD:-GET}" != POST ]; then
    printf 'Status: 303 See Other\r\nLocation: /\r\n\r\n'
    exit 0
fi

case ${CONTENT_LENGTH:-0} in
    ''|*[!0-9]*) CONTENT_LENGTH=0 ;;
esac
if [ "${#CONTENT_LENGTH}" -gt 9 ] || [ "$CONTENT_LENGTH" -gt "$MAX_BODY" ]; then
    page "413 Payload Too Large" "$(text "Laporan terlalu panjang" "Report too long")" \
        "    <p class=\"error\">$(text "Laporan terlalu panjang." "The report is too long.")</p>"
fi
BODY=$(head -c "$CONTENT_LENGTH")

NAMA=$(field nama 100)
KONTAK=$(field kontak 100)
KATEGORI=$(field kategori 100)
ISI=$(field isi 4000)

if [ -z "$ISI" ]; then
    page "400 Bad Request" "$(text "Laporan kosong" "Empty report")" \
        "    <p class=\"error\">$(text "Isi laporan wajib diisi." "Please write your report.")</p>"
fi
if [ -z "$NAMA" ]; then
    if [ "$LAKSA_ANONYMOUS" = yes ]; then
        NAMA=$(text "Anonim" "Anonymous")
    else
        page "400 Bad Request" "$(text "Nama wajib diisi" "Name required")" \
            "    <p class=\"error\">$(text "Nama pelapor wajib diisi." "Please give your name.")</p>"
    fi
fi

STORED=0
[ -f "$REPORTS" ] && STORED=$(wc -c <"$REPORTS")
if [ "$STORED" -ge "$MAX_STORED" ]; then
    page "507 Insufficient Storage" "$(text "Gagal menyimpan" "Could not save")" \
        "    <p class=\"error\">$(text "Laporan belum dapat disimpan. Hubungi kami lewat email." "The report could not be saved. Please write to us.")</p>"
fi

RAND=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
TICKET="LAKSA-$(date -u +%Y%m%d)-$(printf '%05d' "${RAND:-0}")"
# One line per report, written with one append.
LINE=$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$TICKET" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$NAMA" "$KONTAK" "$KATEGORI" "$ISI")
if ! printf '%s\n' "$LINE" >>"$REPORTS" 2>/dev/null; then
    page "503 Service Unavailable" "$(text "Gagal menyimpan" "Could not save")" \
        "    <p class=\"error\">$(text "Laporan belum dapat disimpan. Coba lagi nanti." "The report could not be saved. Please try again later.")</p>"
fi

page "200 OK" "$(text "Laporan diterima" "Report received")" "    <p>$(text "Terima kasih, $(html "$NAMA"). Laporan Anda ($(html "$KATEGORI")) telah diterima dan akan diteruskan ke perangkat daerah terkait." "Thank you, $(html "$NAMA"). Your report ($(html "$KATEGORI")) has been received and will be forwarded to the responsible department.")</p>
    <p>$(text "Nomor tiket" "Ticket number"):</p>
    <p class=\"ticket\">$(html "$TICKET")</p>"
