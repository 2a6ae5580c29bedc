/*
 * A tiny HVM guest for migration captures: a multiboot (v1) ELF that QEMU's
 * `-kernel` loader boots (libxl passes `kernel=` of an HVM config to the
 * qemu-xen device model). It says it booted on COM1 and on Xen's debug port
 * 0xe9 (Xen logs an HVM guest's lines there as "(dN) ...", which `xl dmesg`
 * shows; xenconsoled does not log an HVM serial line), again every 64
 * bursts, and dirties a sliding window of pages forever, so live migration
 * rounds and Remus checkpoints carry a changing set of pages.
 * No PV drivers: libxl suspends it with xc_domain_shutdown(SHUTDOWN_suspend),
 * which needs no help from the guest.
 *
 * Memory: the first 1 MiB is the BIOS's; the kernel loads at 1 MiB; pages are
 * dirtied in [4 MiB, 4 MiB + WINDOW_PAGES * 4 KiB).
 */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .set COM1, 0x3f8
        .set XEN_DEBUG, 0xe9            /* Xen prints an HVM guest's 0xe9 lines: xl dmesg */
        .set DIRTY_BASE, 0x400000
        .set WINDOW_PAGES, 512          /* 2 MiB of pages cycled through */
        .set BURST_PAGES, 16            /* pages written per burst */
        .set SPIN, 400000               /* pause iterations between bursts */

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .text
        .code32
        .globl _start
_start:
        cli
        xor     %ebx, %ebx              /* burst number */
say:    mov     $msg, %esi
1:      lodsb
        test    %al, %al
        jz      burst
        mov     $COM1, %dx
        out     %al, %dx
        mov     $XEN_DEBUG, %dx
        out     %al, %dx
        jmp     1b
burst:  inc     %ebx
        test    $63, %ebx
        jz      say
        /* first page of this burst: (burst * BURST_PAGES) mod WINDOW_PAGES */
        mov     %ebx, %eax
        imul    $BURST_PAGES, %eax
        and     $(WINDOW_PAGES - 1), %eax
        mov     $BURST_PAGES, %ecx
3:      mov     %eax, %edi
        shl     $12, %edi
        add     $DIRTY_BASE, %edi
        mov     %ebx, (%edi)            /* one word per page: the page is dirty */
        inc     %eax
        and     $(WINDOW_PAGES - 1), %eax
        dec     %ecx
        jnz     3b
        mov     $SPIN, %ecx
4:      pause
        dec     %ecx
        jnz     4b
        jmp     burst

        .section .rodata
msg:    .asciz "GUEST: booted, dirtying pages\n"
