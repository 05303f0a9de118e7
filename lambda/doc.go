// Package lambda is a self-contained client library for Lambda Cloud: the
// typed HTTP API (instances, instance types, SSH keys, file systems, regions)
// and SSH to the instances it launches (keys, host-key pinning, exec, upload,
// log tail, download).
//
// It imports no other package of cpbot. The API key never appears in errors,
// logs or the formatted value of a Client.
package lambda
