/* Prints the kernel's knob table (kernel/cmdline.c) as the Markdown table README.md carries between its
 * knobs:begin and knobs:end markers; `make readme-knobs` puts it there, and the cmdline unit test checks that
 * README.md says the same. */
#include <stdio.h>

#include "cmdline.h"

int main(void)
{
	static char md[32768];
	int n = cmdline_format_markdown(md, sizeof(md));

	if (n < 0 || (size_t)n >= sizeof(md)) {
		fprintf(stderr, "knobs: table larger than %zu bytes\n", sizeof(md));
		return 1;
	}
	fputs(md, stdout);
	return 0;
}
