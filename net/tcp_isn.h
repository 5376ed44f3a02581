/* TCP initial sequence numbers as RFC 6528 asks: ISN = M + F(local ip, local port, remote ip, remote port, key),
 * M a 4 us clock, F SipHash-2-4 under a key drawn at boot. An off-path host can neither predict the ISN of
 * someone else's connection nor learn anything from its own. */
#ifndef TCP_ISN_H
#define TCP_ISN_H

/* Draws the secret key (random_init() must have run). */
void tcp_isn_init(void);

#endif
