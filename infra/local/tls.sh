#!/usr/bin/env bash
# Makes a local CA and a 127.0.0.1/localhost server certificate it signs, once, in DIR.
# The emulators serve HTTPS with it; clients trust it through SSL_CERT_FILE=DIR/ca.pem.
set -euo pipefail
dir="${1:?usage: tls.sh DIR}"
mkdir -p "$dir"
cd "$dir"
if [ -s ca.pem ] && [ -s server.pem ] && openssl x509 -checkend 86400 -noout -in server.pem >/dev/null 2>&1; then
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=Airlock local CA" \
  -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
cat > server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 400 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext
echo "local CA: $dir/ca.pem"
