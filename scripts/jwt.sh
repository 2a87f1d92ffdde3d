# shellcheck shell=bash
# Makes RS256 JWTs with openssl, for tests and the demo (never production).

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# sign_rs256 PRIVATE_KEY_PEM HEADER_JSON PAYLOAD_JSON
sign_rs256() {
  local signing_input
  signing_input="$(printf '%s' "$2" | b64url).$(printf '%s' "$3" | b64url)"
  printf '%s.%s' "$signing_input" "$(printf '%s' "$signing_input" | openssl dgst -sha256 -sign "$1" -binary | b64url)"
}
