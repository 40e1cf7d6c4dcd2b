package bpf

// The C includes need the multiarch asm headers (Debian: /usr/include/<triple>).
//go:generate go run ./internal/gencrc -o include/crc32.h
//go:generate go tool bpf2go -tags linux -target bpfel -type rule_key -type mask_entry -cc clang -cflags "-O2 -g -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu" graygw graygw.c
