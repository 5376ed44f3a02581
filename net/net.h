/* The network layer's entry points for the kernel. */
#ifndef NET_H
#define NET_H

struct kernel_config;

/* Starts lwIP (and, as they arrive, the NIC drivers and services) and registers its main-loop work. */
int net_init(const struct kernel_config *cfg);

#endif
