/*
 * Multiboot (v1) entry of the uefi-vars conformance guest.
 *
 * QEMU's -kernel loads this ELF32 image through its multiboot option ROM and
 * jumps to _start in 32-bit protected mode with paging off and flat
 * segments. The guest only sets up a stack and calls guest_main().
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000000

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    cld
    call guest_main
halt:
    hlt
    jmp halt

    .bss
    .balign 16
    .space 65536
stack_top:

    .section .note.GNU-stack, "", @progbits
