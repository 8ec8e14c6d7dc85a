/* protocols.c - the protocol the core expects from each plug's module: the
 * modules' own tables (interfaces/<plug>/<x>-protocol.c), indexed by plug.
 * Kept apart from modules.c so that a test registry (tests/unit/fake/) uses
 * the same tables. */
#include "modules.h"

#include "fw-protocol.h"
#include "hw-protocol.h"
#include "libvirt-protocol.h"
#include "netctl-protocol.h"
#include "netobs-protocol.h"
#include "ovs-protocol.h"
#include "procctl-protocol.h"
#include "sysobs-protocol.h"

#include <assert.h>

const struct module_protocol *const module_protocols[_PLUG_MAX] = {
        [PLUG_LIBVIRT] = &libvirt_protocol,
        [PLUG_OPENVSWITCH] = &ovs_protocol,
        [PLUG_NETWORK_CONTROL] = &netctl_protocol,
        [PLUG_FIREWALL_CONTROL] = &fw_protocol,
        [PLUG_HARDWARE_OBSERVE] = &hw_protocol,
        [PLUG_SYSTEM_OBSERVE] = &sysobs_protocol,
        [PLUG_NETWORK_OBSERVE] = &netobs_protocol,
        [PLUG_PROCESS_CONTROL] = &procctl_protocol,
};

const struct module_protocol *modules_protocol(enum plug_id plug)
{
        return (unsigned)plug < _PLUG_MAX ? module_protocols[plug] : NULL;
}

const char *module_ep_name(struct module_ep ep)
{
        const struct module_protocol *mp = modules_protocol(ep.plug);

        assert(mp && ep.id < mp->n_entrypoints);
        return mp->entrypoints[ep.id].name;
}

void module_request_init(struct proto_writer *w, struct module_ep ep)
{
        assert(w);
        pw_init(w, PROTO_REQUEST, 0, 0, module_ep_name(ep));
}
