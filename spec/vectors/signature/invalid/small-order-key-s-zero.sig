{
  "format": "cerro-torre/signature/v1",
  "suite": "CT-SIG-01",
  "key_id": "vector-key",
  "fingerprint": "SHA256:01d0:fabd:251f:cbbe:2b93:b4b9:27b2:6ad2:a1a9:9077:152e:45de:d1e6:78af:a45d:bec5",
  "public_key": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  "signature": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
}
