"""Mock AMD GPU: KFD driver model and the RDNA3 shader emulator."""
