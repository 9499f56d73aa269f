# Sourced by scripts/start.sh and scripts/test.sh: stop early, saying exactly what to install.
turnout_check_prereqs() {
  local missing=()
  [ -x /usr/sbin/slapd ] || missing+=(slapd)
  [ -x /usr/sbin/slapadd ] || missing+=(slapd)
  command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
  [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  [ -x /usr/bin/openssl ] || missing+=(openssl)
  [ -x /usr/bin/curl ] || missing+=(curl)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    missing+=(python3-aiosmtpd)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
    return 1
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "Rust is missing: install it from https://rustup.rs (then open a new shell)." >&2
    return 1
  fi
}
