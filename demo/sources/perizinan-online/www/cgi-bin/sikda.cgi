#!/bin/sh
# Perizinan Online sample: does SIKDA answer? Permits are signed by officers whose
# records SIKDA keeps, so the service shows whether it can reach SIKDA.
#
# SIKDA's address is SIKDA_URL from the environment (a deployment gives SIKDA's
# internal URL), else "sikda_url" of www/config.json (rendered by smartshare).
# Answers a page, or JSON with ?format=json.
CONFIG=/www/config.json

html() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
        -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}
json() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}
# config_value KEY: a top-level string of config.json, as the template writes it (one per line).
config_value() {
    sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$CONFIG" 2>/dev/null | head -n 1
}

url=${SIKDA_URL:-$(config_value sikda_url)}
source=environment
[ -n "${SIKDA_URL:-}" ] || source=config.json
url=${url%/}

answered=false db_reachable=null
case $url in
    http://*|https://*)
        # SIKDA's status says whether its own database answers (db_reachable).
        if reply=$(timeout 5 wget -q -O- "$url/cgi-bin/status.cgi" 2>/dev/null); then
            answered=true
            reply=$(printf '%s' "$reply" | head -c 4096)
            case $reply in
                *'"db_reachable": true'*) db_reachable=true ;;
                *'"db_reachable": false'*) db_reachable=false ;;
            esac
        fi
        ;;
esac

case ${QUERY_STRING:-} in
    *format=json*)
        printf 'Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n'
        printf '{"app": "perizinan-online", "sikda_url": %s, "sikda_url_from": "%s", "sikda_answered": %s, "sikda_db_reachable": %s}\n' \
            "$(json "$url")" "$source" "$answered" "$db_reachable"
        exit 0
        ;;
esac

region=$(sed -n 's/^    "title": "\(.*\)",\{0,1\}$/\1/p' "$CONFIG" 2>/dev/null | head -n 1)
title=$(config_value site_title)
primary=$(sed -n 's/.*name="theme-color" content="\(#[0-9A-Fa-f]*\)".*/\1/p' /www/index.html 2>/dev/null)
if [ "$answered" = true ]; then
    verdict="<p class=\"sikda-status ok\" data-answered=\"true\">SIKDA menjawab: data pejabat penandatangan izin dapat dibaca.</p>"
else
    verdict="<p class=\"sikda-status error\" data-answered=\"false\">SIKDA tidak menjawab: penandatanganan izin menunggu sampai SIKDA tersedia.</p>"
fi
case $db_reachable in
    true) database="<p>Basis data SIKDA: terhubung.</p>" ;;
    false) database="<p>Basis data SIKDA: tidak terhubung.</p>" ;;
    *) database="" ;;
esac
printf 'Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\r\n'
cat <<HTML
<!doctype html>
<html lang="id">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Koneksi SIKDA | $(html "$title")</title>
  <link rel="stylesheet" href="/style.css">
  <style>:root { --primary: $(html "${primary:-#0E4C92}"); }</style>
</head>
<body>
  <header>
    <p class="region">$(html "$region")</p>
    <h1>$(html "$title")</h1>
  </header>
  <main>
    <h2>Koneksi ke SIKDA</h2>
    <p>Alamat: <code>$(html "$url")</code> (dari $(html "$source"))</p>
    $verdict
    $database
    <p><a href="/">Kembali</a></p>
  </main>
</body>
</html>
HTML
