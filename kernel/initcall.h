/* Start-up hooks for layers above the kernel (the network layer), so kernel/ never includes their headers:
 * a layer declares KERNEL_INITCALL(fn) and kernel_main runs every one, in link order, once the devices are
 * up and before the main loop starts. */
#ifndef INITCALL_H
#define INITCALL_H

struct kernel_config;

typedef int (*kernel_initcall_fn)(const struct kernel_config *cfg);

struct kernel_initcall {
	const char *name;
	kernel_initcall_fn fn;
};

#define KERNEL_INITCALL(f)                                                                                   \
	static const struct kernel_initcall initcall_##f                                                     \
		__attribute__((used, section(".initcall"), aligned(sizeof(void *)))) = { #f, f }

/* Bounds of the .initcall section (linker/kernel.ld). */
extern const struct kernel_initcall __initcall_start[], __initcall_end[];

#endif
