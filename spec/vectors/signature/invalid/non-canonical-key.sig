{
  "format": "cerro-torre/signature/v1",
  "suite": "CT-SIG-01",
  "key_id": "vector-key",
  "fingerprint": "SHA256:e7e7:d504:8bfb:a447:9550:8d03:58d4:cf95:e6c1:a29b:10da:9126:3b7d:decf:40a9:1817",
  "public_key": "8P///////////////////////////////////////38=",
  "signature": "i8YWebmfYvy4enTeFYxYnwo3GDhmzaUau3LJ4t/Yk209GH0AUXfZgFfU7f0muAJ+9tXdwbsIUeOPUZlFbQvEAA=="
}
