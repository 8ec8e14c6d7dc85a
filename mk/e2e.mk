# ---- end to end under real snapd (scripts/e2e/) ----
#
#   make e2e          build/cache the Debian 12 guest (snapd, AppArmor, libvirt +
#                     QEMU, Open vSwitch) and the stand-in snapd/core22 snaps under
#                     /var/cache/nova-hypervisor-e2e, boot it under QEMU, run
#                     scripts/e2e/scenario.sh inside, one pass/fail line per step
#                     (the test guest of make guest is imported and booted in it).
#                     Logs and the guest journal in build/e2e/.
#                     NOVA_E2E_TIMEOUT (s, default 7200) bounds the VM's run.
#   make e2e-image    only build (or find) the cached guest image
#
# Not part of make check (see e2e-skip-note): one run takes far longer than a
# check should on this machine (no KVM: the guest runs under TCG).

.PHONY: e2e e2e-image e2e-skip-note

e2e: $(SNAP_FILE)
	bash scripts/e2e/run.sh $(SNAP_FILE)

e2e-image:
	bash scripts/e2e/build-image.sh

e2e-skip-note:
	@echo "e2e: skipped: make e2e (real snapd in a QEMU guest, software emulation, no KVM here) took 69 min per run on this shared machine (+ up to 42 min for the one-time guest build), over CI's 30 min budget; run make e2e"
