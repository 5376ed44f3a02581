/* The network layer's shared state: one lwIP netif per NIC, and the live configuration the control language
 * changes. The kernel starts the layer through its initcall (net.c); nothing here is for kernel/. */
#ifndef NET_H
#define NET_H

#include "cmdline.h"
#include "netdev.h"

struct ethif;

/* The netif of NIC i (NULL if its netif could not be added). */
struct ethif *net_ethif(unsigned i);

/* The configuration in force: the command line's, as changed since by the control language. */
struct kernel_config *net_config(void);

/* Applies the delivery knobs of net_config() (mode, budget, coalesce, coalesce_us, consumer) to every NIC. */
void net_apply_config(void);

#endif
