#!/bin/sh
# Renders the deployment's settings from the container environment into env.xml (read by
# conf/vars.xml), then runs the given command (FreeSWITCH by default).
#
# FreeSWITCH's preprocessor pastes $${values} into the XML text as they are, so a value holding
# a quote, an angle bracket or a "$" would silently break the configuration: such values are
# refused here with a message that names the variable (never its value).
set -eu

CONF_DIR=${FS_CONF_DIR:-/etc/freeswitch}
OUT="$CONF_DIR/env.xml"
AUDIO_FORK=${AUDIO_FORK:-jambonz}

fail() {
    echo "freeswitch: $*" >&2
    exit 64
}

lines=""
# emit NAME_IN_FREESWITCH ENV_NAME [required]
emit() {
    name=$1 var=$2 need=${3:-}
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        [ "$need" = required ] && fail "$var is not set (see .env.example)"
        return 0
    fi
    case $value in
        *[\"\'\<\>\&\$\\\`\|[:space:]]*)
            fail "$var contains a character FreeSWITCH's configuration cannot carry (quotes, < > & \$ \\ \` | or whitespace)" ;;
    esac
    lines="$lines  <X-PRE-PROCESS cmd=\"set\" data=\"$name=$value\"/>
"
    echo "freeswitch: $var set" >&2
}

emit esl_password ESL_PASSWORD required
emit fork_password FORK_PASSWORD required
emit fork_user FORK_USER
emit fork_url FORK_URL
emit sip_port SIP_PORT
emit rtp_start_port RTP_START_PORT
emit rtp_end_port RTP_END_PORT
emit external_sip_ip EXTERNAL_IP
emit external_rtp_ip EXTERNAL_IP
emit esl_acl_cidr ESL_ACL_CIDR
emit carrier_proxy CARRIER_PROXY
emit carrier_realm CARRIER_REALM
emit carrier_username CARRIER_USERNAME
emit carrier_password CARRIER_PASSWORD
emit carrier_register CARRIER_REGISTER
emit carrier_cidr CARRIER_CIDR
emit outbound_caller_id OUTBOUND_CALLER_ID
emit default_language DEFAULT_LANGUAGE
emit console_loglevel FS_LOG_LEVEL
emit max_sessions FS_MAX_SESSIONS
emit operator_destination OPERATOR_DESTINATION
[ -n "${OPERATOR_DESTINATION:-}" ] ||
    echo "freeswitch: OPERATOR_DESTINATION is not set: calls handed to a person will end" >&2

case $AUDIO_FORK in
    # The jambonz module streams the agent's audio back over the fork (with playout marks).
    jambonz) streaming="|true|true|16000" ;;
    # The upstream module has no streamed playback: the bridge must use BRIDGE_PLAYBACK=file.
    drachtio) streaming="" ;;
    *) fail "AUDIO_FORK must be jambonz or drachtio (got an unknown build)" ;;
esac
lines="$lines  <X-PRE-PROCESS cmd=\"set\" data=\"audio_fork_streaming=$streaming\"/>
"

if [ -n "${CARRIER_PROXY:-}" ] && [ -z "${CARRIER_REALM:-}" ]; then
    lines="$lines  <X-PRE-PROCESS cmd=\"set\" data=\"carrier_realm=$CARRIER_PROXY\"/>
"
fi

umask 077
tmp="$OUT.tmp.$$"
printf '<include>\n%s</include>\n' "$lines" > "$tmp"
mv "$tmp" "$OUT"

exec "$@"
