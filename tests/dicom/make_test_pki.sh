#!/usr/bin/env bash
# A throwaway PKI for the DICOM TLS tests and benchmark, made with openssl in DIR: CAs testca and rogueca; from
# testca: node, pacs, sender (valid 2 days) and expired (expired yesterday); from rogueca: stranger and
# roguepacs. Each NAME has NAME.key and NAME.crt (PEM, RSA 2048).
# Usage: make_test_pki.sh DIR
set -euo pipefail
pki=$1
mkdir -p "$pki"
ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.crt" -days 2 -subj "/CN=$1" 2>/dev/null; }
cert() {  # NAME CA DAYS
  openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.crt" -CAkey "$pki/$2.key" -CAcreateserial -out "$pki/$1.crt" \
    -days "$3" 2>/dev/null
}
ca testca
ca rogueca
cert node testca 2
cert pacs testca 2
cert sender testca 2
cert stranger rogueca 2
cert expired testca -1
cert roguepacs rogueca 2
