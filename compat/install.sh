#!/usr/bin/env bash
# shellcheck disable=SC2317 # the install_* functions are called by name at the end
# compat/install.sh: installs the external clients compat/run.sh drives. Idempotent
# and quiet: each component is skipped when its stamp (a hash of the file that pins
# it) matches, so a second run takes about a second. Prints one line per component
# it installs or fails to install; exits non-zero if any failed, after trying all.
#
#   kcat            Debian package (apt-get)
#   kafka-python,   a venv in $SAMSA_CACHE/venv from compat/python/requirements.txt
#   confluent-kafka
#   kafkajs         npm ci into compat/js/node_modules from compat/js/package-lock.json
#   Kafka CLI jars  mvn dependency:copy-dependencies of compat/java/pom.xml
#                   into $SAMSA_CACHE/kafka-jars (outside the repo)
#
# Environment: SAMSA_CACHE (default ~/.cache/samsa); SAMSA_COMPAT_INSTALL_LOG, where
# installer output goes (default $SAMSA_CACHE/install.log).
set -uo pipefail

COMPAT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${SAMSA_CACHE:-$HOME/.cache/samsa}
mkdir -p "$CACHE"
LOG=${SAMSA_COMPAT_INSTALL_LOG:-$CACHE/install.log}
: > "$LOG"
failed=0

say() { echo "compat install: $*" >&2; }

# stamp_ok NAME FILE...: true when NAME was installed from these exact files.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() {
	local name=$1; shift
	[[ -f $CACHE/$name.stamp && $(cat "$CACHE/$name.stamp") == "$(stamp_of "$@")" ]]
}
stamp_write() {
	local name=$1; shift
	stamp_of "$@" > "$CACHE/$name.stamp"
}

as_root() {
	if [[ $(id -u) == 0 ]]; then "$@"
	elif command -v sudo > /dev/null; then sudo -n "$@"
	else return 1
	fi
}

install_kcat() {
	command -v kcat > /dev/null && return 0
	say "installing kcat (apt-get)"
	{
		as_root apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq kcat
	} >> "$LOG" 2>&1 && command -v kcat > /dev/null
}

install_python() {
	local req=$COMPAT/python/requirements.txt venv=$CACHE/venv
	if [[ -x $venv/bin/python ]] && stamp_ok python "$req"; then return 0; fi
	say "installing kafka-python and confluent-kafka (pip, into $venv)"
	{
		{ [[ -x $venv/bin/python ]] || python3 -m venv "$venv"; } &&
			"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
	} >> "$LOG" 2>&1 || return 1
	stamp_write python "$req"
}

install_js() {
	local js=$COMPAT/js
	if [[ -f $js/node_modules/kafkajs/package.json ]] && stamp_ok js "$js/package-lock.json"; then
		return 0
	fi
	say "installing kafkajs (npm ci)"
	(cd "$js" && npm ci --silent --no-audit --no-fund) >> "$LOG" 2>&1 || return 1
	stamp_write js "$js/package-lock.json"
}

install_jars() {
	local pom=$COMPAT/java/pom.xml jars=$CACHE/kafka-jars
	if compgen -G "$jars/kafka-tools-*.jar" > /dev/null && stamp_ok jars "$pom"; then return 0; fi
	say "installing the Apache Kafka CLI jars (mvn, into $jars)"
	rm -rf "$jars.tmp"
	(cd "$COMPAT/java" && mvn -q -B dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$jars.tmp") >> "$LOG" 2>&1 || return 1
	rm -rf "$jars" && mv "$jars.tmp" "$jars" || return 1
	stamp_write jars "$pom"
}

for component in kcat python js jars; do
	if ! "install_$component"; then
		say "FAILED to install $component (log: $LOG)"
		failed=1
	fi
done
exit $failed
