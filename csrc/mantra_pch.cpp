// Builds the precompiled header (csrc/mantra_pch.h) that programs and tests reuse.
int main() { return 0; }
