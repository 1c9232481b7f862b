#!/bin/sh
# SIKDA sample: report whether the runtime database settings reached the container.
# The password itself is never printed.
json() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}
if [ -n "${SIKDA_DB_PASSWORD:-}" ]; then password_set=true; else password_set=false; fi
printf 'Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n'
printf '{"app": "sikda", "db_host": %s, "db_name": %s, "db_user": %s, "db_password_set": %s}\n' \
    "$(json "${SIKDA_DB_HOST:-}")" "$(json "${SIKDA_DB_NAME:-}")" "$(json "${SIKDA_DB_USER:-}")" \
    "$password_set"
