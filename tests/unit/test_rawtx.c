/* Unit tests for tools/rawtx.c, the frames of tools/load --packet: header fields, the IPv4 checksum against a
 * known header, MAC parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "../../tools/rawtx.h"

/* The worked example of RFC 1071-style checksums in many texts: 4500 0073 0000 4000 4011 [b861] c0a8 0001
 * c0a8 00c7. */
static void test_csum_known_header(void **state)
{
	(void)state;
	uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
	                 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
	assert_int_equal(rawtx_csum(h, 20), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	assert_int_equal(rawtx_csum(h, 20), 0); /* a header with its checksum sums to zero */
}

static void test_build_frame(void **state)
{
	(void)state;
	struct rawtx_flow f = {.dst_mac = {2, 0, 0, 0, 0, 2}, .src_mac = {2, 0, 0, 0, 0, 1}, .sport = 40000,
	                       .dport = 9};
	inet_pton(AF_INET, "192.168.77.1", &f.src);
	inet_pton(AF_INET, "192.168.77.2", &f.dst);
	uint8_t buf[128];
	memset(buf, 0xaa, sizeof(buf));
	size_t n = rawtx_build(buf, &f, 18, 7);
	assert_int_equal(n, 60); /* 64 B on the wire with the FCS */
	assert_memory_equal(buf, f.dst_mac, 6);
	assert_int_equal(buf[12] << 8 | buf[13], 0x0800);
	assert_int_equal(buf[16] << 8 | buf[17], 46); /* IPv4 total length */
	assert_int_equal(buf[18] << 8 | buf[19], 7);  /* id */
	assert_int_equal(rawtx_csum(buf + 14, 20), 0);
	assert_int_equal(buf[34] << 8 | buf[35], 40000);
	assert_int_equal(buf[36] << 8 | buf[37], 9);
	assert_int_equal(buf[38] << 8 | buf[39], 26); /* UDP length */
	assert_int_equal(buf[59], 0);                 /* payload zeroed */
	assert_int_equal(buf[60], 0xaa);              /* nothing written past the frame */
	assert_int_equal(rawtx_build(buf, &f, 65536, 0), 0);
}

static void test_parse_mac(void **state)
{
	(void)state;
	uint8_t m[6];
	assert_int_equal(rawtx_parse_mac("52:54:00:12:34:5f", m), 0);
	assert_int_equal(m[0], 0x52);
	assert_int_equal(m[5], 0x5f);
	assert_int_equal(rawtx_parse_mac("52:54:00:12:34", m), -1);
	assert_int_equal(rawtx_parse_mac("52:54:00:12:34:5f:00", m), -1);
	assert_int_equal(rawtx_parse_mac("5:54:00:12:34:5f", m), -1);
	assert_int_equal(rawtx_parse_mac("zz:54:00:12:34:5f", m), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csum_known_header),
	    cmocka_unit_test(test_build_frame),
	    cmocka_unit_test(test_parse_mac),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
