#!/bin/sh
# codex-box init hook for Java 25 / Maven projects. Runs as the agent user before the agent.
#
#   codex-box --init_script init-hooks/sandbox-setup-java-25.sh \
#             --read-only ~/.m2 [--read-only /path/to/jdk-25] [--read-only /path/to/maven]
#
# - JDK: JAVA25_HOME if set, else a JDK 25 found under the read-only host mounts (/app/...) or in the
#   image; the hook fails, naming what to mount, when there is none.
# - Maven: settings in the writable home whose local repository is in the home (tmpfs) and whose
#   read-only *tail* is the host's ~/.m2/repository (Maven >= 3.9 reads artifacts from it and never
#   writes there), so builds work offline from the host cache without the agent writing to it.
set -eu
: "${SANDBOX_ENV_DIR:?run by codex-box, which sets SANDBOX_ENV_DIR}"
env_file="$SANDBOX_ENV_DIR/sandbox.env"

# codex-box lists the read-only mounts in CODEX_BOX_READ_ONLY (container paths, ':'-separated).
ro_mounts() { echo "${CODEX_BOX_READ_ONLY:-}" | tr ':' '\n'; }

find_jdk() {
    if [ -n "${JAVA25_HOME:-}" ] && [ -x "$JAVA25_HOME/bin/java" ]; then echo "$JAVA25_HOME"; return; fi
    for m in $(ro_mounts); do
        for d in "$m" "$m"/.sdkman/candidates/java/25* "$m"/.jdks/*25* "$m"/*jdk*25*; do
            [ -x "$d/bin/java" ] && "$d/bin/java" -version 2>&1 | grep -q 'version "25' && { echo "$d"; return; }
        done
    done
    for d in /usr/lib/jvm/*25*; do [ -x "$d/bin/java" ] && { echo "$d"; return; }; done
}
jdk=$(find_jdk || true)
if [ -z "$jdk" ]; then
    echo "sandbox-setup-java-25: no JDK 25 found; mount one read-only (e.g. --read-only ~/.sdkman/candidates/java/25-tem) or set JAVA25_HOME" >&2
    exit 2
fi

host_m2=
for m in $(ro_mounts); do
    for d in "$m" "$m/.m2"; do [ -d "$d/repository" ] && { host_m2=$d; break 2; }; done
done

mkdir -p "$HOME/.m2/repository"
cat >"$HOME/.m2/settings.xml" <<XML
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <localRepository>$HOME/.m2/repository</localRepository>
</settings>
XML
{
    echo "export JAVA_HOME=\"$jdk\""
    echo "export PATH=\"$jdk/bin:\$PATH\""
    if [ -n "$host_m2" ]; then
        echo "export MAVEN_ARGS=\"-Dmaven.repo.local.tail=$host_m2/repository \${MAVEN_ARGS:-}\""
    fi
} >>"$env_file"
echo "sandbox-setup-java-25: JAVA_HOME=$jdk${host_m2:+, Maven cache (read-only) $host_m2/repository}"
