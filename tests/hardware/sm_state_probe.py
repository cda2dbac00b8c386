"""READ_ALL_SM_ERROR_STATES argument variants on a real GPU (not a pytest module):
which target handle and SM range the driver accepts.

    python tests/hardware/sm_state_probe.py
"""
import hwdrv

d = hwdrv.open_device("nvidia:0")
nv, rm = d.nv, d.rm
dbg = d.debugger()
for label, target, n, start in [("channel, 1 SM from 0", d.h_compute_ch, 1, 0),
                                 ("channel, 100 SMs from 0", d.h_compute_ch, 100, 0),
                                 ("compute object, 1 SM", d.h_compute, 1, 0),
                                 ("channel group, 1 SM", d.h_tsg, 1, 0),
                                 ("no target, 1 SM", 0, 1, 0),
                                 ("channel, 32 SMs from 100", d.h_compute_ch, 32, 100)]:
    p = nv.ffi.new("NV83DE_CTRL_DEBUG_READ_ALL_SM_ERROR_STATES_PARAMS *")
    p.hTargetChannel, p.numSMsToRead, p.startingSM = target, n, start
    try:
        rm.control(dbg, nv.NV83DE_CTRL_CMD_DEBUG_READ_ALL_SM_ERROR_STATES, p, "READ_ALL_SM_ERROR_STATES")
        print(f"{label}: OK")
    except hwdrv.HwdrvError as e:
        print(f"{label}: {getattr(e, 'status_name', e)}")
d.close()
