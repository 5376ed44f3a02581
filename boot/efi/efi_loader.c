/* BOOTX64.EFI: the UEFI boot path.
 *
 * A GNU-EFI application that carries the kernel ELF inside itself (kernel_blob.S), places its PT_LOAD
 * segments at their physical addresses, gathers what the kernel needs into a struct boot_info (ACPI RSDP,
 * command line, memory map, loader TSC), leaves boot services and jumps to the ELF entry point.
 *
 * Steps (efi_main):
 *   1. rdtsc, InitializeLib, allocate boot_info (loader memory; the kernel copies it first thing).
 *   2. Validate the embedded ELF and load its PT_LOAD segments with AllocatePages(AllocateAddress)
 *      (EfiLoaderData; EfiLoaderCode for executable segments, in case the firmware maps LoaderData NX).
 *   3. ACPI RSDP from the configuration table (2.0 GUID first, then 1.0).
 *   4. Command line: LoadOptions (UCS-2 -> ASCII, program name skipped when a shell passed it), else
 *      \EFI\BOOT\CMDLINE.TXT on the volume we were loaded from, else empty.
 *   5. GetMemoryMap + ExitBootServices, retried on a stale map key (bounded).
 *   6. Convert the final UEFI map into boot_info.memmap (sorted, merged, capped).
 *   7. cli, then call the kernel entry (SysV ABI) with %rdi = &boot_info. Never returns.
 *
 * GNU-EFI 3.0.15: its crt0 calls efi_main with the SysV convention, so efi_main is NOT declared EFIAPI. The
 * firmware services are EFIAPI (ms_abi) function pointers and are called directly (GNU_EFI_USE_MS_ABI). Its
 * linker script folds .bss into .data, so large buffers are allocated from the firmware, never static.
 *
 * Any error before ExitBootServices is printed on ConOut, then the machine is powered off after a short
 * delay (so an automated run ends instead of falling through to PXE boot / the firmware menu). */
#include <efi.h>
#include <efilib.h>

#include "../../kernel/boot_info.h"

#define PAGE_SIZE 4096ull
#define PAGE_MASK (PAGE_SIZE - 1)
#define PAGES(bytes) (((bytes) + PAGE_MASK) / PAGE_SIZE)

#define EBS_MAX_TRIES 8          /* ExitBootServices attempts on EFI_INVALID_PARAMETER (stale map key) */
#define MAP_SLACK_DESCS 16       /* room for descriptors our own allocations may add to the map */
#define FATAL_DELAY_US 3000000u  /* time to read an error message before powering off */

#define CMDLINE_FILE u"\\EFI\\BOOT\\CMDLINE.TXT"

/* UEFI 2.x memory types that GNU-EFI 3.0.15's enum lacks. */
#define EFI_PERSISTENT_MEMORY 14u

/* ---- the embedded kernel (kernel_blob.S) ---- */
extern const UINT8 kernel_blob_start[];
extern const UINT8 kernel_blob_end[];

/* ---- minimal ELF64 definitions (no host <elf.h> in a freestanding build) ---- */
typedef struct {
	UINT8 e_ident[16];
	UINT16 e_type;
	UINT16 e_machine;
	UINT32 e_version;
	UINT64 e_entry;
	UINT64 e_phoff;
	UINT64 e_shoff;
	UINT32 e_flags;
	UINT16 e_ehsize;
	UINT16 e_phentsize;
	UINT16 e_phnum;
	UINT16 e_shentsize;
	UINT16 e_shnum;
	UINT16 e_shstrndx;
} elf64_ehdr;

typedef struct {
	UINT32 p_type;
	UINT32 p_flags;
	UINT64 p_offset;
	UINT64 p_vaddr;
	UINT64 p_paddr;
	UINT64 p_filesz;
	UINT64 p_memsz;
	UINT64 p_align;
} elf64_phdr;

#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define ET_EXEC 2
#define EM_X86_64 62
#define PT_LOAD 1
#define PF_X 1

/* The kernel's 64-bit entry: a plain SysV call, whatever ABI this file defaults to. */
typedef void __attribute__((sysv_abi, noreturn)) (*kernel_entry_fn)(struct boot_info *);

static inline UINT64 rdtsc(void)
{
	UINT32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((UINT64)hi << 32) | lo;
}

/* Error before ExitBootServices: the message is already on ConOut; wait, then power off. */
static void __attribute__((noreturn)) fatal(void)
{
	Print(u"efi: boot failed; powering off in %d s\n", (int)(FATAL_DELAY_US / 1000000u));
	BS->Stall(FATAL_DELAY_US);
	RT->ResetSystem(EfiResetShutdown, EFI_ABORTED, 0, NULL);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static const CHAR16 *mem_type_name(UINT32 type)
{
	static const CHAR16 *const names[] = {
		u"Reserved", u"LoaderCode", u"LoaderData", u"BootServicesCode", u"BootServicesData",
		u"RuntimeServicesCode", u"RuntimeServicesData", u"Conventional", u"Unusable", u"ACPIReclaim",
		u"ACPINVS", u"MMIO", u"MMIOPortSpace", u"PalCode", u"Persistent",
	};
	return type < sizeof(names) / sizeof(names[0]) ? names[type] : u"(unknown)";
}

/* Print the current memory-map entries that overlap [start, end): why AllocateAddress failed. */
static void print_map_conflicts(UINT64 start, UINT64 end)
{
	UINTN size = 0, key, desc_size;
	UINT32 desc_ver;
	EFI_MEMORY_DESCRIPTOR *map = NULL;

	if (BS->GetMemoryMap(&size, NULL, &key, &desc_size, &desc_ver) != EFI_BUFFER_TOO_SMALL)
		return;
	size += MAP_SLACK_DESCS * desc_size;
	if (EFI_ERROR(BS->AllocatePool(EfiLoaderData, size, (void **)&map)))
		return;
	if (!EFI_ERROR(BS->GetMemoryMap(&size, map, &key, &desc_size, &desc_ver))) {
		UINT64 covered = 0;
		for (UINTN off = 0; off + desc_size <= size; off += desc_size) {
			const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((UINT8 *)map + off);
			UINT64 ds = d->PhysicalStart, de = ds + d->NumberOfPages * PAGE_SIZE;
			if (ds < end && de > start) {
				Print(u"efi:   conflicting map entry 0x%lx-0x%lx %s (type %d, attr 0x%lx)\n", ds,
				      de - 1, mem_type_name(d->Type), (int)d->Type, d->Attribute);
				covered += (de < end ? de : end) - (ds > start ? ds : start);
			}
		}
		if (covered < end - start)
			Print(u"efi:   (0x%lx bytes of the range are in no map entry: a hole, e.g. the legacy "
			      u"0xA0000-0xFFFFF area)\n", end - start - covered);
	}
	BS->FreePool(map);
}

/* ---- step 2: validate and load the kernel ELF ---- */

/* The ELF header: a 64-bit little-endian x86_64 executable with a program header table inside the blob. */
static const elf64_ehdr *check_elf_header(const UINT8 *blob, UINT64 size)
{
	const elf64_ehdr *eh = (const elf64_ehdr *)blob;

	if (size < sizeof(*eh) || eh->e_ident[0] != 0x7f || eh->e_ident[1] != 'E' || eh->e_ident[2] != 'L' ||
	    eh->e_ident[3] != 'F') {
		Print(u"efi: kernel image is not an ELF file (bad magic)\n");
		fatal();
	}
	if (eh->e_ident[4] != ELFCLASS64 || eh->e_ident[5] != ELFDATA2LSB) {
		Print(u"efi: kernel ELF is not 64-bit little-endian (class %d, data %d)\n", (int)eh->e_ident[4],
		      (int)eh->e_ident[5]);
		fatal();
	}
	if (eh->e_machine != EM_X86_64) {
		Print(u"efi: kernel ELF is not x86_64 (e_machine %d)\n", (int)eh->e_machine);
		fatal();
	}
	if (eh->e_type != ET_EXEC) {
		Print(u"efi: kernel ELF is not an executable (e_type %d, want ET_EXEC)\n", (int)eh->e_type);
		fatal();
	}
	if (eh->e_phentsize != sizeof(elf64_phdr) || eh->e_phnum == 0 || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(elf64_phdr) < eh->e_phnum) {
		Print(u"efi: kernel ELF has a bad program header table (off %ld, %d x %d bytes)\n", eh->e_phoff,
		      (int)eh->e_phnum, (int)eh->e_phentsize);
		fatal();
	}
	return eh;
}

/* PT_LOAD number i: its bytes inside the blob, below 2^47, identity-linked, after the previous segment. */
static void check_segment(const elf64_phdr *p, UINTN i, UINT64 size, UINT64 prev_end)
{
	UINT64 start = p->p_paddr, end = p->p_paddr + p->p_memsz;
	if (p->p_filesz > p->p_memsz || p->p_offset > size || size - p->p_offset < p->p_filesz || end < start ||
	    end > (1ull << 47)) {
		Print(u"efi: kernel PT_LOAD %d is malformed (off 0x%lx filesz 0x%lx memsz 0x%lx paddr 0x%lx)\n", (int)i,
		      p->p_offset, p->p_filesz, p->p_memsz, p->p_paddr);
		fatal();
	}
	if (p->p_paddr != p->p_vaddr) {
		Print(u"efi: kernel PT_LOAD %d has p_paddr 0x%lx != p_vaddr 0x%lx (must be identity-linked)\n", (int)i,
		      p->p_paddr, p->p_vaddr);
		fatal();
	}
	if (start < prev_end) {
		Print(u"efi: kernel PT_LOAD %d at 0x%lx overlaps or precedes the previous one (ends 0x%lx)\n", (int)i,
		      start, prev_end);
		fatal();
	}
}

/* Allocates the pages PT_LOAD number i covers that a previous segment has not already taken (two segments may
 * share a page when the linker does not page-align them): [max(page of start, *alloc_end), pend). */
static void alloc_segment_pages(const elf64_phdr *p, UINTN i, UINT64 pend, UINT64 *alloc_end)
{
	UINT64 start = p->p_paddr;
	UINT64 pstart = start & ~PAGE_MASK;
	if (pstart < *alloc_end)
		pstart = *alloc_end;
	if (pstart >= pend)
		return;
	/* EfiLoaderData, except executable segments: firmware whose NX policy covers LoaderData
	 * (edk2's PcdDxeNxMemoryProtectionPolicy) would otherwise fault on the kernel's first
	 * instruction, still on the firmware's page tables. Both become MEM_LOADER. */
	EFI_MEMORY_TYPE type = (p->p_flags & PF_X) ? EfiLoaderCode : EfiLoaderData;
	EFI_PHYSICAL_ADDRESS addr = pstart;
	EFI_STATUS s = BS->AllocatePages(AllocateAddress, type, (pend - pstart) / PAGE_SIZE, &addr);
	if (EFI_ERROR(s)) {
		Print(u"efi: cannot allocate kernel PT_LOAD %d at 0x%lx-0x%lx: %r\n", (int)i, pstart, pend - 1, s);
		print_map_conflicts(pstart, pend);
		fatal();
	}
	/* Bytes of fresh pages before the segment (none of the ELF's business, but keep them clean). */
	ZeroMem((void *)(UINTN)pstart, start > pstart ? start - pstart : 0);
	*alloc_end = pend;
}

/* Validates the ELF header and every PT_LOAD; allocates and fills the segments. Returns the entry point. */
static UINT64 load_kernel(const UINT8 *blob, UINT64 size)
{
	const elf64_ehdr *eh = check_elf_header(blob, size);
	const elf64_phdr *ph = (const elf64_phdr *)(blob + eh->e_phoff);
	UINT64 alloc_end = 0; /* end of the pages allocated so far (segments are sorted by address) */
	UINT64 prev_end = 0;  /* end of the previous segment's bytes */
	int entry_ok = 0;

	for (UINTN i = 0; i < eh->e_phnum; i++) {
		const elf64_phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		check_segment(p, i, size, prev_end);
		UINT64 start = p->p_paddr, end = p->p_paddr + p->p_memsz;
		UINT64 pend = (end + PAGE_MASK) & ~PAGE_MASK;
		alloc_segment_pages(p, i, pend, &alloc_end);

		/* Copy the file bytes, zero the rest up to the page end (.bss and the tail of the last page). */
		CopyMem((void *)(UINTN)start, (void *)(blob + p->p_offset), p->p_filesz);
		ZeroMem((void *)(UINTN)(start + p->p_filesz), pend - (start + p->p_filesz));
		prev_end = end;

		if ((p->p_flags & PF_X) && eh->e_entry >= start && eh->e_entry < end)
			entry_ok = 1;
	}
	if (!entry_ok) {
		Print(u"efi: kernel entry 0x%lx is not inside an executable PT_LOAD segment\n", eh->e_entry);
		fatal();
	}
	return eh->e_entry;
}

/* ---- step 3: ACPI RSDP ---- */

static int guid_eq(const EFI_GUID *a, const EFI_GUID *b)
{
	const UINT8 *x = (const UINT8 *)a, *y = (const UINT8 *)b;
	for (UINTN i = 0; i < sizeof(EFI_GUID); i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static UINT64 find_rsdp(void)
{
	static EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
	static EFI_GUID acpi10 = ACPI_TABLE_GUID;
	EFI_GUID *want[2] = {&acpi20, &acpi10};

	for (int w = 0; w < 2; w++) {
		for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
			EFI_CONFIGURATION_TABLE *t = &ST->ConfigurationTable[i];
			const char *sig = t->VendorTable;
			if (guid_eq(&t->VendorGuid, want[w]) && sig && sig[0] == 'R' && sig[1] == 'S' &&
			    sig[2] == 'D' && sig[3] == ' ' && sig[4] == 'P' && sig[5] == 'T' && sig[6] == 'R' &&
			    sig[7] == ' ')
				return (UINT64)(UINTN)t->VendorTable;
		}
	}
	return 0;
}

/* ---- step 4: command line ---- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Strips leading/trailing blanks of the NUL-terminated s in place, turns tabs/newlines into spaces. */
static UINTN trim(char *s)
{
	UINTN n = 0, start = 0, i;
	while (s[n])
		n++;
	for (i = 0; i < n; i++)
		if (is_space(s[i]))
			s[i] = ' ';
	while (start < n && s[start] == ' ')
		start++;
	while (n > start && s[n - 1] == ' ')
		n--;
	for (i = start; i < n; i++)
		s[i - start] = s[i];
	s[n - start] = 0;
	return n - start;
}

/* LoadOptions -> ASCII. Binary options (e.g. the GUID OVMF stores in auto-created boot entries) are
 * ignored. A UEFI shell passes the whole command line, program name first: drop it when the image carries the
 * shell-parameters protocol, or when the first word looks like an .efi file name. */
static UINTN cmdline_from_load_options(EFI_HANDLE image, const EFI_LOADED_IMAGE *li, char *out, UINTN cap)
{
	const CHAR16 *w = li->LoadOptions;
	UINTN n = li->LoadOptionsSize / sizeof(CHAR16), len = 0, i;

	out[0] = 0;
	if (!w || n == 0)
		return 0;
	for (i = 0; i < n && w[i]; i++) {
		CHAR16 c = w[i];
		if (!(c >= 0x20 && c <= 0x7e) && c != '\t' && c != '\r' && c != '\n') {
			Print(u"efi: ignoring non-text load options (%d bytes)\n", (int)li->LoadOptionsSize);
			return 0;
		}
		if (len + 1 < cap)
			out[len++] = (char)c;
	}
	out[len] = 0;
	if (len + 1 >= cap && i < n && w[i])
		Print(u"efi: load options truncated to %d characters\n", (int)(cap - 1));
	if (trim(out) == 0)
		return 0;

	/* First word, optionally quoted. */
	UINTN end;
	int quoted = out[0] == '"';
	for (end = quoted; out[end] && (quoted ? out[end] != '"' : out[end] != ' '); end++)
		;
	UINTN word_end = end + (quoted && out[end] == '"');
	UINTN wlen = end - quoted;
	const char *word = out + quoted;

	void *shell_params = NULL;
	int from_shell = !EFI_ERROR(BS->HandleProtocol(image, &ShellParametersProtocolGuid, &shell_params));
	int has_eq = 0;
	for (i = 0; i < wlen; i++)
		has_eq |= word[i] == '=';
	int efi_name = !has_eq && wlen >= 4 && word[wlen - 4] == '.' && lower(word[wlen - 3]) == 'e' &&
		       lower(word[wlen - 2]) == 'f' && lower(word[wlen - 1]) == 'i';
	if (from_shell || efi_name) {
		for (i = 0; out[word_end + i]; i++)
			out[i] = out[word_end + i];
		out[i] = 0;
	}
	return trim(out);
}

/* \EFI\BOOT\CMDLINE.TXT on the volume this image was loaded from. A missing file means an empty line. */
static UINTN cmdline_from_file(const EFI_LOADED_IMAGE *li, char *out, UINTN cap, int *found)
{
	EFI_SIMPLE_FILE_SYSTEM_PROTOCOL *fs = NULL;
	EFI_FILE_PROTOCOL *root = NULL, *f = NULL;
	EFI_STATUS s;
	UINTN len = 0;

	out[0] = 0;
	*found = 0;
	s = BS->HandleProtocol(li->DeviceHandle, &FileSystemProtocol, (void **)&fs);
	if (EFI_ERROR(s)) {
		Print(u"efi: boot device has no file system (%r); empty command line\n", s);
		return 0;
	}
	s = fs->OpenVolume(fs, &root);
	if (EFI_ERROR(s)) {
		Print(u"efi: cannot open boot volume (%r); empty command line\n", s);
		return 0;
	}
	s = root->Open(root, &f, CMDLINE_FILE, EFI_FILE_MODE_READ, 0);
	if (EFI_ERROR(s)) {
		if (s != EFI_NOT_FOUND)
			Print(u"efi: cannot open %s (%r); empty command line\n", CMDLINE_FILE, s);
		root->Close(root);
		return 0;
	}

	*found = 1;
	len = cap - 1;
	s = f->Read(f, &len, out);
	if (EFI_ERROR(s)) {
		Print(u"efi: cannot read %s (%r); empty command line\n", CMDLINE_FILE, s);
		len = 0;
	} else if (len == cap - 1) {
		char extra;
		UINTN one = 1;
		if (!EFI_ERROR(f->Read(f, &one, &extra)) && one == 1)
			Print(u"efi: %s truncated to %d bytes\n", CMDLINE_FILE, (int)(cap - 1));
	}
	f->Close(f);
	root->Close(root);
	out[len] = 0;

	/* UTF-8 BOM, then stop at a NUL; anything outside printable ASCII becomes '?'. */
	UINTN start = (len >= 3 && (UINT8)out[0] == 0xef && (UINT8)out[1] == 0xbb && (UINT8)out[2] == 0xbf) ? 3 : 0;
	UINTN j = 0;
	for (UINTN i = start; i < len && out[i]; i++) {
		UINT8 c = (UINT8)out[i];
		out[j++] = (c >= 0x20 && c <= 0x7e) || is_space((char)c) ? (char)c : '?';
	}
	out[j] = 0;
	return trim(out);
}

/* ---- step 6: UEFI memory map -> boot_info.memmap ---- */

static UINT32 convert_type(UINT32 efi_type)
{
	switch (efi_type) {
	case EfiConventionalMemory:
		return MEM_USABLE;
	case EfiLoaderCode:
	case EfiLoaderData:
	case EfiBootServicesCode:
	case EfiBootServicesData:
		return MEM_LOADER;
	case EfiACPIReclaimMemory:
		return MEM_ACPI_RECLAIM;
	case EfiACPIMemoryNVS:
		return MEM_ACPI_NVS;
	case EfiUnusableMemory:
		return MEM_BAD;
	case EfiMemoryMappedIO:
	case EfiMemoryMappedIOPortSpace:
		return MEM_MMIO;
	default: /* Reserved, RuntimeServices*, PalCode, Persistent, anything newer (e.g. unaccepted) */
		return MEM_RESERVED;
	}
}

/* Runs after ExitBootServices: pure computation, no firmware calls. scratch holds >= n entries. */
static void convert_memmap(struct boot_info *bi, const EFI_MEMORY_DESCRIPTOR *map, UINTN map_size,
			   UINTN desc_size, struct boot_mem_region *scratch)
{
	UINTN n = 0, i, j;

	for (i = 0; i + desc_size <= map_size; i += desc_size) {
		const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)((const UINT8 *)map + i);
		if (d->NumberOfPages == 0)
			continue;
		scratch[n].base = d->PhysicalStart;
		scratch[n].length = d->NumberOfPages * PAGE_SIZE;
		scratch[n].type = convert_type(d->Type);
		scratch[n].reserved = 0;
		n++;
	}

	/* Sort by base (insertion sort: the map is nearly sorted and ~100 entries long). */
	for (i = 1; i < n; i++) {
		struct boot_mem_region r = scratch[i];
		for (j = i; j > 0 && scratch[j - 1].base > r.base; j--)
			scratch[j] = scratch[j - 1];
		scratch[j] = r;
	}

	/* Merge touching entries of the same type; keep at most BOOT_MEMMAP_MAX (the highest ones are dropped,
	 * which never happened with OVMF: its merged map is a few dozen entries). */
	UINTN count = 0;
	for (i = 0; i < n; i++) {
		struct boot_mem_region *last = count ? &bi->memmap[count - 1] : NULL;
		if (last && last->type == scratch[i].type && last->base + last->length == scratch[i].base) {
			last->length += scratch[i].length;
		} else if (count < BOOT_MEMMAP_MAX) {
			bi->memmap[count++] = scratch[i];
		}
	}
	bi->memmap_count = (uint32_t)count;
}

/* ---- step 1: boot_info ---- */

/* boot_info in loader memory (the kernel copies it first thing), its header filled in. */
static struct boot_info *alloc_boot_info(UINT64 tsc)
{
	EFI_PHYSICAL_ADDRESS bi_addr;
	EFI_STATUS s = BS->AllocatePages(AllocateAnyPages, EfiLoaderData, PAGES(sizeof(struct boot_info)), &bi_addr);
	if (EFI_ERROR(s)) {
		Print(u"efi: cannot allocate boot_info: %r\n", s);
		fatal();
	}
	struct boot_info *bi = (struct boot_info *)(UINTN)bi_addr;
	ZeroMem(bi, sizeof(*bi));
	bi->magic = BOOT_INFO_MAGIC;
	bi->version = BOOT_INFO_VERSION;
	bi->boot_path = BOOT_PATH_UEFI;
	bi->loader_tsc = tsc;
	return bi;
}

/* ---- step 4: where the command line comes from ---- */

/* bi->cmdline from the load options, else from CMDLINE_FILE. Returns where it came from, for the log. */
static const CHAR16 *read_cmdline(EFI_HANDLE image, struct boot_info *bi)
{
	EFI_LOADED_IMAGE *li = NULL;
	EFI_STATUS s = BS->HandleProtocol(image, &LoadedImageProtocol, (void **)&li);
	if (EFI_ERROR(s)) {
		Print(u"efi: no LoadedImage protocol on our own handle: %r\n", s);
		fatal();
	}
	if (cmdline_from_load_options(image, li, bi->cmdline, BOOT_CMDLINE_MAX) != 0)
		return u"load options";
	int found;
	cmdline_from_file(li, bi->cmdline, BOOT_CMDLINE_MAX, &found);
	return found ? CMDLINE_FILE : u"none";
}

/* ---- step 5: memory map + ExitBootServices ---- */

/* The final memory map, and a scratch array with room for one boot_mem_region per descriptor. */
struct final_map {
	EFI_MEMORY_DESCRIPTOR *map;
	struct boot_mem_region *scratch;
	UINTN cap, size, key, desc_size;
	UINT32 desc_ver;
};

/* (Re)sizes both buffers of m for a map of m->size bytes, with slack: allocating them adds descriptors of their
 * own. */
static void grow_map_buffers(struct final_map *m)
{
	EFI_STATUS s;
	if (m->map)
		BS->FreePool(m->map);
	if (m->scratch)
		BS->FreePool(m->scratch);
	m->map = NULL;
	m->scratch = NULL;
	m->cap = m->size + MAP_SLACK_DESCS * m->desc_size;
	/* (GNU-EFI's EFI_ERROR() does not parenthesise its argument: no assignments inside.) */
	s = BS->AllocatePool(EfiLoaderData, m->cap, (void **)&m->map);
	if (!EFI_ERROR(s))
		s = BS->AllocatePool(EfiLoaderData, (m->cap / m->desc_size) * sizeof(struct boot_mem_region),
				     (void **)&m->scratch);
	if (EFI_ERROR(s)) {
		Print(u"efi: cannot allocate the memory map buffers (%ld bytes): %r\n", m->cap, s);
		fatal();
	}
}

/* Every buffer is allocated before the map that is handed to ExitBootServices is read; between that
 * GetMemoryMap and ExitBootServices nothing may allocate (Print included). After a failed ExitBootServices only
 * GetMemoryMap may be called again. On return boot services are gone and *m holds the final map. */
static void exit_boot_services(EFI_HANDLE image, struct final_map *m)
{
	int ebs_tries = 0, grows = 0;
	EFI_STATUS s;

	for (;;) {
		m->size = m->cap;
		s = BS->GetMemoryMap(&m->size, m->map, &m->key, &m->desc_size, &m->desc_ver);
		if (s == EFI_BUFFER_TOO_SMALL && ebs_tries == 0 && grows++ < 8) {
			grow_map_buffers(m);
			continue;
		}
		if (EFI_ERROR(s)) {
			/* After a failed ExitBootServices ConOut may already be gone: best effort. */
			Print(u"efi: GetMemoryMap failed: %r\n", s);
			fatal();
		}
		s = BS->ExitBootServices(image, m->key);
		if (s == EFI_SUCCESS)
			return;
		if (s != EFI_INVALID_PARAMETER || ++ebs_tries >= EBS_MAX_TRIES) {
			Print(u"efi: ExitBootServices failed after %d tries: %r\n", ebs_tries, s);
			fatal();
		}
	}
}

/* ---- entry point (SysV: called by GNU-EFI's crt0, not by the firmware) ---- */

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	/* 1. Timestamp first, then GNU-EFI's globals (ST, BS, RT) for Print & co. */
	UINT64 tsc = rdtsc();
	InitializeLib(image, systab);
	UINT64 blob_size = (UINT64)(kernel_blob_end - kernel_blob_start);
	Print(u"efi: loading kernel (%ld bytes)\n", blob_size);
	struct boot_info *bi = alloc_boot_info(tsc);

	/* 2. The kernel's segments, at their link addresses. */
	UINT64 entry = load_kernel(kernel_blob_start, blob_size);

	/* 3. ACPI. */
	bi->rsdp = find_rsdp();
	if (!bi->rsdp)
		Print(u"efi: warning: no ACPI RSDP in the configuration table\n");

	/* 4. Command line. */
	const CHAR16 *cmd_src = read_cmdline(image, bi);
	Print(u"efi: rsdp 0x%lx, entry 0x%lx, cmdline (%s): \"%a\"\n", bi->rsdp, entry, cmd_src,
	      (CHAR8 *)bi->cmdline);

	/* 5. Memory map + ExitBootServices. */
	struct final_map m = {0};
	exit_boot_services(image, &m);

	/* Boot services are gone: from here on, no firmware calls (and no Print). */

	/* 6. The memory map the kernel gets. */
	convert_memmap(bi, m.map, m.size, m.desc_size, m.scratch);

	/* 7. Interrupts off, then the kernel: SysV call with %rdi = bi, on the firmware's stack and page tables
	 * (OVMF identity-maps everything). */
	__asm__ volatile("cli" ::: "memory");
	((kernel_entry_fn)(UINTN)entry)(bi);
}
