#!/bin/sh
# LAKSA sample: receive a report from the form on / and give it a ticket number.
# Regional settings come from /etc/laksa/site.env (rendered by smartshare).

LAKSA_SITE_TITLE=LAKSA
LAKSA_REGION_TITLE='Kota Tangerang'
LAKSA_PRIMARY_COLOR='#0E4C92'
LAKSA_SUPPORT_EMAIL='laksa@tangerangkota.go.id'
LAKSA_LANGUAGE=id
LAKSA_ANONYMOUS=yes
CONF=${LAKSA_CONF:-/etc/laksa/site.env}
# shellcheck disable=SC1090
[ -r "$CONF" ] && . "$CONF"
DATA_DIR=${LAKSA_DATA_DIR:-/var/lib/laksa}
MAX_BODY=65536

html() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
        -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

# One form field from the url-encoded body, decoded, tabs and newlines flattened.
field() {
    raw=$(printf '%s' "$BODY" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1)
    raw=$(printf '%s' "$raw" | sed -e 's/\\/\\\\/g' -e 's/+/ /g' \
        -e 's/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')
    printf '%b' "$raw" | tr '\t\r\n' '   '
}

text() { # text ID-TEXT EN-TEXT
    if [ "$LAKSA_LANGUAGE" = en ]; then printf '%s' "$2"; else printf '%s' "$1"; fi
}

page() { # page STATUS TITLE BODY-HTML
    printf 'Status: %s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n' "$1"
    cat <<HTML
<!doctype html>
<html lang="$(html "$LAKSA_LANGUAGE")">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>$(html "$2") | $(html "$LAKSA_REGION_TITLE")</title>
  <link rel="stylesheet" href="/style.css">
  <style>:root { --primary: $(html "$LAKSA_PRIMARY_COLOR"); }</style>
</head>
<body>
  <header>
    <p class="region">$(html "$LAKSA_REGION_TITLE")</p>
    <h1>$(html "$LAKSA_SITE_TITLE")</h1>
  </header>
  <main>
$3
    <p><a href="/">$(text "Kembali ke formulir" "Back to the form")</a></p>
  </main>
  <footer><p>$(html "$LAKSA_REGION_TITLE") &middot; <a href="mailto:$(html "$LAKSA_SUPPORT_EMAIL")">$(html "$LAKSA_SUPPORT_EMAIL")</a></p></footer>
</body>
</html>
HTML
    exit 0
}

if [ "${REQUEST_METHOD:-GET}" != POST ]; then
    printf 'Status: 303 See Other\r\nLocation: /\r\n\r\n'
    exit 0
fi

case ${CONTENT_LENGTH:-0} in
    ''|*[!0-9]*) CONTENT_LENGTH=0 ;;
esac
if [ "$CONTENT_LENGTH" -gt "$MAX_BODY" ]; then
    page "413 Payload Too Large" "$(text "Laporan terlalu panjang" "Report too long")" \
        "    <p class=\"error\">$(text "Laporan terlalu panjang." "The report is too long.")</p>"
fi
BODY=$(head -c "$CONTENT_LENGTH")

NAMA=$(field nama)
KONTAK=$(field kontak)
KATEGORI=$(field kategori)
ISI=$(field isi)

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

RAND=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
TICKET="LAKSA-$(date -u +%Y%m%d)-$(printf '%05d' "${RAND:-0}")"
if ! printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$TICKET" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "$NAMA" "$KONTAK" "$KATEGORI" "$ISI" >>"$DATA_DIR/laporan.tsv" 2>/dev/null; then
    page "503 Service Unavailable" "$(text "Gagal menyimpan" "Could not save")" \
        "    <p class=\"error\">$(text "Laporan belum dapat disimpan. Coba lagi nanti." "The report could not be saved. Please try again later.")</p>"
fi

page "200 OK" "$(text "Laporan diterima" "Report received")" "    <p>$(text "Terima kasih, $(html "$NAMA"). Laporan Anda ($(html "$KATEGORI")) telah diterima dan akan diteruskan ke perangkat daerah terkait." "Thank you, $(html "$NAMA"). Your report ($(html "$KATEGORI")) has been received and will be forwarded to the responsible department.")</p>
    <p>$(text "Nomor tiket" "Ticket number"):</p>
    <p class=\"ticket\">$(html "$TICKET")</p>"
