#!/usr/bin/env python3
"""Write the mixture weights of a PocketSphinx PTM model as a SphinxTrain
`mixture_weights` file.

usage: sendump2mixw.py SENDUMP OUT

Debian's pocketsphinx-en-us ships only `sendump`, the decoder's compact
form: 8-bit negated logarithms (base 1.0001, shifted right by 10 bits),
laid out [feature][density][senone].  SphinxTrain's bw needs the weights as
floats, laid out [senone][feature][density].  The 8-bit form loses some
precision; that is harmless here, where the weights only set each frame's
posteriors for estimating a transform of the means.
"""
import struct, sys

def read_sendump(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while True:  # length-prefixed header strings, ended by a length of 0
        (n,) = struct.unpack_from("<i", data, pos)
        pos += 4
        if n == 0:
            break
        if not 0 < n < 1000:
            sys.exit(f"{path}: not a sendump file (string length {n} at byte {pos - 4})")
        pos += n
    n_density, n_sen = struct.unpack_from("<ii", data, pos)
    pos += 8
    body = data[pos:]
    if n_density <= 0 or n_sen <= 0 or len(body) % (n_density * n_sen):
        sys.exit(f"{path}: {len(body)} bytes of weights do not fit {n_density} x {n_sen}")
    return n_density, n_sen, len(body) // (n_density * n_sen), body

def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    n_density, n_sen, n_feat, body = read_sendump(argv[1])
    floats = []
    for s in range(n_sen):
        for f in range(n_feat):
            base = f * n_density * n_sen + s
            w = [1.0001 ** -(body[base + d * n_sen] << 10) for d in range(n_density)]
            total = sum(w)
            floats.extend(x / total for x in w)
    with open(argv[2], "wb") as out:
        out.write(b"s3\nversion 1.0\nendhdr\n")
        out.write(struct.pack("<I", 0x11223344))
        out.write(struct.pack("<IIII", n_sen, n_feat, n_density, len(floats)))
        out.write(struct.pack(f"<{len(floats)}f", *floats))

if __name__ == "__main__":
    main(sys.argv)
