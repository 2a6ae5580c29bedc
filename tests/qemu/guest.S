/*
 * 512-byte boot sector for the migscope QEMU captures (booted from a floppy
 * image: -drive file=guest.img,format=raw,if=floppy,readonly=on; SeaBIOS
 * boots it even with -nodefaults).
 *
 * It loops forever writing a pass counter into 16 words (one every 256
 * bytes) of each of PAGES 4 KiB pages starting at 0x10000, so those pages are
 * dirty again after every pass; the pass counter is also kept at 0x7e00.
 * With BUSY=0 it halts (sti; hlt) after each pass, so it makes one pass per
 * BIOS timer tick (18.2 Hz) and costs the host almost no CPU; BUSY=1 spins.
 *
 * Build (run.sh does this):
 *   as --32 --defsym PAGES=32 --defsym BUSY=0 -o guest.o guest.S
 *   ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o guest.img guest.o
 *   truncate -s 1474560 guest.img
 * PAGES is 1..144 (0x10000..0x9ffff).
 *
 * The invlpg before each page matters under TCG: TCG notices guest writes
 * to RAM for dirty logging only through TLB entries marked "not dirty"; once
 * a page has been written, its TLB entry loses that mark, and QEMU 7.2's
 * bitmap sync for migration (the word-at-a-time fast path of
 * cpu_physical_memory_sync_dirty_bitmap) clears the dirty bits without
 * resetting the TLB.  A real OS flushes its TLB often enough; this guest
 * never would, so without invlpg its data pages are sent once and never
 * again (only pages that also hold translated code, like 0x7000 here, are
 * tracked on every write).
 */
.code16
.globl _start
_start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x7c00, %sp
  xor %dx, %dx
outer:
  inc %dx
  mov $0x1000, %bx
page:
  mov %bx, %es
  xor %di, %di
  invlpg %es:(%di)      /* see above: makes TCG track this pass's writes */
fill:
  mov %dx, %es:(%di)
  add $256, %di
  cmp $4096, %di
  jb fill
  add $0x100, %bx
  cmp $(0x1000 + PAGES * 0x100), %bx
  jb page
  mov %dx, 0x7e00
.if BUSY == 0
  sti
  hlt
  cli
.endif
  jmp outer
.org 510
.byte 0x55, 0xaa
