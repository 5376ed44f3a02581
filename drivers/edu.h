/* QEMU's edu test device: an INTx source nothing serves, for the interrupt-storm test. */
#ifndef EDU_H
#define EDU_H

/* Finds the device (if QEMU was given -device edu) and registers the console command `edu-irq`. */
void edu_init(void);

#endif
