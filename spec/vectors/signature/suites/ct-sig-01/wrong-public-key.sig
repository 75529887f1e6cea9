{
  "format": "cerro-torre/signature/v1",
  "suite": "CT-SIG-01",
  "key_id": "vector-key",
  "fingerprint": "SHA256:3097:e2de:e2cb:4a34:b538:40cd:b705:aed7:1067:c36f:68db:0e0f:559c:3f3f:a043:315f",
  "public_key": "IVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=",
  "signature": "i8YWebmfYvy4enTeFYxYnwo3GDhmzaUau3LJ4t/Yk209GH0AUXfZgFfU7f0muAJ+9tXdwbsIUeOPUZlFbQvEAA=="
}
