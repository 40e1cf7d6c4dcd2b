package bpf

// The C includes need the multiarch asm headers (Debian: /usr/include/<triple>;
// the amd64 and arm64 ones are listed, a missing directory is ignored).
//go:generate go run ./internal/gencrc -o include/crc32.h
//go:generate go tool bpf2go -tags linux -target bpfel -type rule_key -type mask_entry -type mask_table -type rule_cell -type mask6_entry -type addr6 -cc clang -cflags "-O2 -g -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu" graygw graygw.c
