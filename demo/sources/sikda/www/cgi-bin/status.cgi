#!/bin/sh
# SIKDA sample: report, as JSON, whether the database settings reached the container
# and whether the database answers. The password itself is never printed.
#
# Settings come from the environment, else from the runtime file smartshare renders
# (runtime.env, sourced; SIKDA_RUNTIME_ENV names it, default /etc/sikda/runtime.env).
# The password may also come from a file: SIKDA_DB_PASSWORD_FILE (the _FILE convention
# of secrets mounted under /run/secrets/), which wins over SIKDA_DB_PASSWORD.
from_env_host=${SIKDA_DB_HOST-} from_env_port=${SIKDA_DB_PORT-} from_env_name=${SIKDA_DB_NAME-}
from_env_user=${SIKDA_DB_USER-} from_env_password=${SIKDA_DB_PASSWORD-}
RUNTIME_ENV=${SIKDA_RUNTIME_ENV:-/etc/sikda/runtime.env}
runtime_env_read=false
if [ -r "$RUNTIME_ENV" ]; then
    # shellcheck disable=SC1090
    . "$RUNTIME_ENV"
    runtime_env_read=true
fi
SIKDA_DB_HOST=${from_env_host:-${SIKDA_DB_HOST-}}
SIKDA_DB_PORT=${from_env_port:-${SIKDA_DB_PORT:-5432}}
SIKDA_DB_NAME=${from_env_name:-${SIKDA_DB_NAME-}}
SIKDA_DB_USER=${from_env_user:-${SIKDA_DB_USER-}}
SIKDA_DB_PASSWORD=${from_env_password:-${SIKDA_DB_PASSWORD-}}

password_source=none
if [ -n "${SIKDA_DB_PASSWORD_FILE-}" ]; then
    if [ -r "$SIKDA_DB_PASSWORD_FILE" ] && [ -s "$SIKDA_DB_PASSWORD_FILE" ]; then
        password_source="file"
    else
        password_source=unreadable-file
    fi
elif [ -n "$SIKDA_DB_PASSWORD" ]; then
    password_source=environment
fi
unset SIKDA_DB_PASSWORD from_env_password
if [ "$password_source" = file ] || [ "$password_source" = environment ]; then
    password_set=true
else
    password_set=false
fi

# The database answers when its port does: the demo's stand-in for PostgreSQL serves
# HTTP there. Host and port are checked before use; wget gets 3 seconds.
db_reachable=false
case $SIKDA_DB_HOST in
    ''|-*|*[!A-Za-z0-9.-]*) ;;
    *)
        case $SIKDA_DB_PORT in
            ''|*[!0-9]*) ;;
            *)
                if timeout 3 wget -q -O /dev/null "http://$SIKDA_DB_HOST:$SIKDA_DB_PORT/" 2>/dev/null
                then
                    db_reachable=true
                fi
                ;;
        esac
        ;;
esac

json() {
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}
printf 'Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n'
printf '{"app": "sikda", "db_host": %s, "db_port": %s, "db_name": %s, "db_user": %s, ' \
    "$(json "$SIKDA_DB_HOST")" "$(json "$SIKDA_DB_PORT")" "$(json "$SIKDA_DB_NAME")" \
    "$(json "$SIKDA_DB_USER")"
printf '"db_password_set": %s, "db_password_source": "%s", "runtime_env_read": %s, "db_reachable": %s}\n' \
    "$password_set" "$password_source" "$runtime_env_read" "$db_reachable"
