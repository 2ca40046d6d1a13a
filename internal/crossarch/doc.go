// Package crossarch holds the tests of mlship's promise that the same data,
// config and seed give the same model directory, predictions and image digest on
// linux/amd64 and linux/arm64 (README, "The model directory"). They build the
// real binaries for both architectures, run the foreign one under qemu-user
// (qemu-aarch64-static on an amd64 host, qemu-x86_64-static on an arm64 one,
// installed by hack/setup.sh) and compare bytes; and they scan the arm64
// machine code of mlship's own packages for fused multiply-adds, which Go may
// emit on arm64 (and never on amd64) wherever x*y + z is written without an
// explicit float64(x*y).
package crossarch
