/* ovs-sha1.c - libopenvswitch's SHA-1 without OpenSSL's EVP machinery.
 *
 * libopenvswitch built with OpenSSL (Debian's) computes SHA-1 through EVP
 * (lib/sha1.c): the IDL's first row insert seeds UUID generation with a SHA-1
 * (lib/uuid.c), and EVP's first use loads OpenSSL's default provider. That
 * touched about 2-3 MiB of libcrypto and its heap in an idle module that uses
 * no TLS (issue 22: bench/footprint, nova-openvswitch 3.4 MiB over its floor,
 * libcrypto's text the bulk of it). The same lib/sha1.c also exports OVS's own
 * implementation (ovs_sha1_*), identical digests: the module is linked with
 * -Wl,--wrap for the four entry points (Makefile), which sends every call from
 * libopenvswitch here, and from here to ovs_sha1_*. TLS streams (ssl:) would
 * still use OpenSSL; the module connects over a unix socket. */
#include <sha1.h>

void __wrap_sha1_init(struct sha1_ctx *ctx);
void __wrap_sha1_update(struct sha1_ctx *ctx, const void *data, uint32_t size);
void __wrap_sha1_final(struct sha1_ctx *ctx, uint8_t digest[SHA1_DIGEST_SIZE]);
void __wrap_sha1_bytes(const void *data, uint32_t size, uint8_t digest[SHA1_DIGEST_SIZE]);

void __wrap_sha1_init(struct sha1_ctx *ctx)
{
        ovs_sha1_init(ctx);
}

void __wrap_sha1_update(struct sha1_ctx *ctx, const void *data, uint32_t size)
{
        ovs_sha1_update(ctx, data, size);
}

void __wrap_sha1_final(struct sha1_ctx *ctx, uint8_t digest[SHA1_DIGEST_SIZE])
{
        ovs_sha1_final(ctx, digest);
}

void __wrap_sha1_bytes(const void *data, uint32_t size, uint8_t digest[SHA1_DIGEST_SIZE])
{
        ovs_sha1_bytes(data, size, digest);
}
