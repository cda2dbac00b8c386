"""Mock RDNA3 (gfx1100, wave32) GPU core: decoder, disassembler and numpy shader emulator.

Entry point for the mock CP: :func:`hwdrv.mock.amd.rdna3.dispatch.dispatch`.
"""
