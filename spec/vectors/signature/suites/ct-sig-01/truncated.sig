{
  "format": "cerro-torre/signature/v1",
  "suite": "CT-SIG-01",
  "key_id": "vector-key",
  "fingerprint": "SHA256:21fe:31df:a154:a261:626b:f854:046f:d227:1b7b:ed4b:6abe:45aa:5887:7ef4:7f97:21b9",
  "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  "signature": "i8YWebmfYvy4enTeFYxYnwo3GDhmzaUau3LJ4t/Yk209GH0AUXfZgFfU7f0muAJ+9tXdwbsIUeOPUZlFbQvE"
}
