#!/usr/bin/env bash
# Prints `export` lines with Clerk-shaped RS256 tokens signed by the test key
# (tests/fixtures), for the verified-mode regression test, which
# reads them with psql's \getenv. Times are relative to now.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key="$here/../../tests/fixtures/test_rs256_private.pem"
now=$(date +%s)

source "$here/../../scripts/jwt.sh"
token() { sign_rs256 "$key" "$1" "$2"; } # token HEADER_JSON PAYLOAD_JSON

header='{"alg":"RS256","kid":"ins_test_key_1","typ":"JWT"}'
claims() { # claims SUB EXP_OFFSET AZP
  printf '{"sub":"%s","sid":"sess_regress","iss":"https://clerk.example.com","azp":"%s","iat":%d,"nbf":%d,"exp":%d}' \
    "$1" "$3" "$((now - 5))" "$((now - 5))" "$((now + $2))"
}

echo "export PG_CLERK_TEST_JWKS='$(tr -d '\n' < "$here/../../tests/fixtures/test_jwks.json")'"
echo "export PG_CLERK_TEST_TOKEN='$(token "$header" "$(claims user_alice 3000 https://app.example.com)")'"
echo "export PG_CLERK_TEST_TOKEN_EXPIRED='$(token "$header" "$(claims user_alice -3600 https://app.example.com)")'"
echo "export PG_CLERK_TEST_TOKEN_OTHER_AZP='$(token "$header" "$(claims user_alice 3000 https://evil.example.com)")'"
# alg:none with an empty signature, claiming to be Bob.
echo "export PG_CLERK_TEST_TOKEN_NONE='$(printf '%s' '{"alg":"none","typ":"JWT"}' | b64url).$(claims user_bob 3000 https://app.example.com | b64url).'"
# Alice's valid signature on a payload edited to say Bob.
valid=$(token "$header" "$(claims user_alice 3000 https://app.example.com)")
echo "export PG_CLERK_TEST_TOKEN_FORGED='${valid%%.*}.$(claims user_bob 3000 https://app.example.com | b64url).${valid##*.}'"
