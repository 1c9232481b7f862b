# LAKSA sample: what the CGI scripts share (sourced by /bin/sh).
# shellcheck shell=sh disable=SC2034 # the scripts sourcing this file use the settings
# Regional settings come from /etc/laksa/site.env (rendered by smartshare);
# these defaults are Kota Tangerang's, for a container started without it.
LAKSA_SITE_TITLE=LAKSA
LAKSA_REGION_TITLE='Kota Tangerang'
LAKSA_PRIMARY_COLOR='#0E4C92'
LAKSA_SUPPORT_EMAIL='laksa@tangerangkota.go.id'
LAKSA_LANGUAGE=id
LAKSA_ANONYMOUS=yes
LAKSA_CONF=${LAKSA_CONF:-/etc/laksa/site.env}
# shellcheck disable=SC1090
[ -r "$LAKSA_CONF" ] && . "$LAKSA_CONF"
# Reports are kept here: a data volume in a deployment, so they outlive the container.
DATA_DIR=${LAKSA_DATA_DIR:-/var/lib/laksa}
REPORTS="$DATA_DIR/laporan.tsv"

# html TEXT: TEXT escaped for HTML text and attribute values.
html() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
        -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

# text ID-TEXT EN-TEXT: the text in the site's language.
text() {
    if [ "$LAKSA_LANGUAGE" = en ]; then printf '%s' "$2"; else printf '%s' "$1"; fi
}

# page STATUS TITLE BODY-HTML: answer with a whole page and stop.
page() {
    printf 'Status: %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\r\n' "$1"
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
    <p><a href="/">$(text "Kirim laporan" "Send a report")</a> &middot;
      <a href="/cgi-bin/laporan.cgi">$(text "Laporan warga" "Citizens' reports")</a></p>
  </main>
  <footer><p>$(html "$LAKSA_REGION_TITLE") &middot; <a href="mailto:$(html "$LAKSA_SUPPORT_EMAIL")">$(html "$LAKSA_SUPPORT_EMAIL")</a></p></footer>
</body>
</html>
HTML
    exit 0
}
