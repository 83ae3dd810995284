/*
 * uefi-vars conformance guest: sends MM requests from a fw_cfg script to
 * QEMU's uefi-vars device the way edk2's VirtMmCommunicationDxe does, and
 * streams every reply out through the debug console.
 *
 * Runs as a multiboot kernel in 32-bit protected mode, identity-mapped, no
 * paging, no interrupts. Protocol and file formats: README.md beside this
 * file. Built with: gcc -m32 -ffreestanding -nostdlib (see build.sh).
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

/* ---- fixed guest-physical memory map (RAM is 64 MiB or more) ---------- */

/* Survives a machine reset (QEMU keeps RAM; SeaBIOS does not touch it). */
#define STATE_ADDR 0x00300000u
/* The 64 KiB communication buffer (edk2: AllocateRuntimePages). */
#define COMM_ADDR 0x00400000u
#define COMM_SIZE 0x00010000u
/* A copy of the request, to send only the bytes the device changed. */
#define SHADOW_ADDR 0x00500000u
/* fw_cfg DMA descriptor. */
#define FWCFG_DESC_ADDR 0x00380000u

/* ---- the device (QEMU hw/uefi, edk2 IndustryStandard/QemuUefiVars.h) --- */

#define UV_BASE 0xFEF10000u
#define UV_REG_MAGIC 0x00
#define UV_REG_CMD_STS 0x02
#define UV_REG_BUFFER_SIZE 0x04
#define UV_REG_DMA_ADDR_LO 0x08
#define UV_REG_DMA_ADDR_HI 0x0C
#define UV_REG_PIO_XFER 0x10
#define UV_REG_PIO_CRC32C 0x18
#define UV_REG_FLAGS 0x1C

#define UV_MAGIC 0x0EF1
#define UV_CMD_RESET 0x01
#define UV_CMD_DMA_MM 0x02
#define UV_CMD_PIO_MM 0x03
#define UV_CMD_PIO_ZERO_OFFSET 0x04
#define UV_STS_BUSY 0x01
#define UV_FLAG_USE_PIO 0x01

/* ---- script and output framing (README.md) ---------------------------- */

#define SCRIPT_NAME "opt/uefivars/script"
#define SCRIPT_MAGIC 0x53515655u /* "UVQS" */
#define SCRIPT_VERSION 1u
#define REC_RESET 1u
#define REC_REQUEST 2u
#define REC_BUFFER_SIZE 3u

#define FRAME_MAGIC 0x46525655u /* "UVRF" */
#define FRAME_BOOT 1u
#define FRAME_REPLY 2u
#define FRAME_RESET 3u
#define FRAME_END 4u
#define FRAME_ERROR 5u
#define FRAME_INIT 6u
#define FRAME_BUFFER_SIZE 7u
#define FRAME_REPLY_DIFF 8u
/* Unchanged runs shorter than this stay inside a changed segment. */
#define DIFF_GAP 16u

#define STATE_MAGIC 0x54535655u /* "UVST" */

/* Reply status values the guest adds to the device's CMD_STS values. */
#define GUEST_STS_PIO_CRC_TX 0x100u /* CRC mismatch writing the request */
#define GUEST_STS_PIO_CRC_RX 0x200u /* CRC mismatch reading the reply */
#define GUEST_STS_TIMEOUT 0x400u    /* still BUSY after 100 polls */

struct state {
    u32 magic;
    u32 nonce;      /* script nonce: stale state from another run is ignored */
    u32 next_index; /* record index to continue with after a reset */
    u32 next_offset;/* its byte offset in the script file */
    u32 boots;
    u32 expect_reset;
};

/* ---- port and MMIO access --------------------------------------------- */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline u32 inl(u16 port)
{
    u32 v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u16 mmio_r16(u32 off) { return *(volatile u16 *)(UV_BASE + off); }
static inline u32 mmio_r32(u32 off) { return *(volatile u32 *)(UV_BASE + off); }
static inline void mmio_w16(u32 off, u16 v) { *(volatile u16 *)(UV_BASE + off) = v; }
static inline void mmio_w32(u32 off, u32 v) { *(volatile u32 *)(UV_BASE + off) = v; }

static inline u32 bswap32(u32 v)
{
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *d, int c, u32 n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, u32 n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

/* ---- output: debug console, exit device, machine reset ---------------- */

#define DEBUGCON 0xE9
#define DEBUG_EXIT 0xF4

static void out_bytes(const void *p, u32 n)
{
    const u8 *b = p;
    __asm__ volatile("rep outsb" : "+S"(b), "+c"(n) : "d"((u16)DEBUGCON) : "memory");
}

static void frame_header(u32 kind, u32 index, u32 status, u32 len)
{
    u32 h[5] = {FRAME_MAGIC, kind, index, status, len};
    out_bytes(h, sizeof h);
}

static void frame(u32 kind, u32 index, u32 status, const void *data, u32 len)
{
    frame_header(kind, index, status, len);
    if (len)
        out_bytes(data, len);
}

/* The bytes of `now` that differ from `was` as segments (u32 offset,
 * u32 length, the bytes of `now`), unchanged runs shorter than DIFF_GAP
 * merged into them. Returns the encoded size; writes the segments to the
 * debug console when `emit` is set. Every debugcon byte is an I/O exit and
 * a write(2) in QEMU, so a reply that changes a status field costs 20
 * bytes instead of the whole buffer. */
static u32 diff_segments(const u8 *now, const u8 *was, u32 len, int emit)
{
    u32 total = 0, i = 0;
    while (i < len) {
        if (now[i] == was[i]) {
            i++;
            continue;
        }
        u32 start = i, end = i + 1;
        for (u32 j = end; j < len && j - end < DIFF_GAP; j++)
            if (now[j] != was[j])
                end = j + 1;
        if (emit) {
            u32 seg[2] = {start, end - start};
            out_bytes(seg, sizeof seg);
            out_bytes(now + start, end - start);
        }
        total += 8 + (end - start);
        i = end;
    }
    return total;
}

static u32 str_len(const char *s)
{
    u32 n = 0;
    while (s[n])
        n++;
    return n;
}

static void quit(u32 code)
{
    /* isa-debug-exit: QEMU exits with status (code << 1) | 1. */
    outl(DEBUG_EXIT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void fail(u32 index, const char *msg)
{
    frame(FRAME_ERROR, index, 0, msg, str_len(msg));
    quit(0x11);
}

static void machine_reset(void)
{
    /* ICH9/PIIX reset control register: full reset. */
    outb(0xCF9, 0x02);
    outb(0xCF9, 0x06);
    /* Fallback: keyboard controller pulse. */
    outb(0x64, 0xFE);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- fw_cfg ------------------------------------------------------------ */

#define FWCFG_SEL 0x510
#define FWCFG_DATA 0x511
#define FWCFG_DMA_HI 0x514
#define FWCFG_DMA_LO 0x518
#define FWCFG_SIGNATURE 0x0000
#define FWCFG_ID 0x0001
#define FWCFG_FILE_DIR 0x0019
#define FWCFG_DMA_ERROR 0x01
#define FWCFG_DMA_READ 0x02
#define FWCFG_DMA_SKIP 0x04
#define FWCFG_DMA_SELECT 0x08

struct fwcfg_dma {
    u32 control; /* big-endian */
    u32 length;  /* big-endian */
    u32 addr_hi; /* big-endian 64-bit address, high half first */
    u32 addr_lo;
};

static u32 read_be32_port(void)
{
    u32 v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | inb(FWCFG_DATA);
    return v;
}

static u16 read_be16_port(void)
{
    u16 hi = inb(FWCFG_DATA);
    return (u16)((hi << 8) | inb(FWCFG_DATA));
}

/* One fw_cfg DMA operation; the device completes it synchronously. */
static int fwcfg_dma(u32 control, void *dest, u32 len)
{
    volatile struct fwcfg_dma *d = (volatile struct fwcfg_dma *)FWCFG_DESC_ADDR;
    d->control = bswap32(control);
    d->length = bswap32(len);
    d->addr_hi = 0;
    d->addr_lo = bswap32((u32)dest);
    __asm__ volatile("" ::: "memory");
    outl(FWCFG_DMA_HI, 0);
    outl(FWCFG_DMA_LO, bswap32(FWCFG_DESC_ADDR));
    u32 c;
    while ((c = bswap32(d->control)) & ~FWCFG_DMA_ERROR)
        ;
    return (c & FWCFG_DMA_ERROR) ? -1 : 0;
}

static u16 script_key;
static u32 script_size;
static u32 script_pos;

static void script_open(u32 offset)
{
    outw(FWCFG_SEL, FWCFG_SIGNATURE);
    if (inb(FWCFG_DATA) != 'Q' || inb(FWCFG_DATA) != 'E' || inb(FWCFG_DATA) != 'M' ||
        inb(FWCFG_DATA) != 'U')
        fail(0, "no fw_cfg");
    outw(FWCFG_SEL, FWCFG_ID);
    u32 id = inb(FWCFG_DATA);
    if (!(id & 0x02))
        fail(0, "fw_cfg has no DMA interface");

    outw(FWCFG_SEL, FWCFG_FILE_DIR);
    u32 count = read_be32_port();
    script_key = 0;
    for (u32 i = 0; i < count; i++) {
        u32 size = read_be32_port();
        u16 select = read_be16_port();
        (void)read_be16_port();
        char name[56];
        for (int j = 0; j < 56; j++)
            name[j] = (char)inb(FWCFG_DATA);
        const char *want = SCRIPT_NAME;
        int k = 0;
        while (want[k] && name[k] == want[k])
            k++;
        if (!want[k] && !name[k] && !script_key) {
            script_key = select;
            script_size = size;
        }
    }
    if (!script_key)
        fail(0, "fw_cfg file " SCRIPT_NAME " missing");
    if (fwcfg_dma(((u32)script_key << 16) | FWCFG_DMA_SELECT | FWCFG_DMA_SKIP, 0, offset))
        fail(0, "fw_cfg skip failed");
    script_pos = offset;
}

static void script_read(void *dest, u32 len, u32 index)
{
    if (len > script_size - script_pos)
        fail(index, "script truncated");
    if (len && fwcfg_dma(FWCFG_DMA_READ, dest, len))
        fail(index, "fw_cfg read failed");
    script_pos += len;
}

/* ---- CRC-32C (Castagnoli), as edk2 CalculateCrc32c(buf, len, 0) ------- */

static u32 crc_table[256];

static void crc_init(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static u32 crc32c(const u8 *p, u32 n)
{
    u32 c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- the device, driven as edk2 QemuMmio.c does ----------------------- */

static u32 use_pio;
/* BUFFER_SIZE as the device reports it (COMM_SIZE unless a script record
 * set another size in this boot). */
static u32 buf_size;

/* Writes a command and polls CMD_STS (16-bit) up to 100 times while BUSY. */
static u32 uv_command(u16 cmd)
{
    mmio_w16(UV_REG_CMD_STS, cmd);
    for (int i = 0; i < 100; i++) {
        u32 sts = mmio_r16(UV_REG_CMD_STS);
        if (sts != UV_STS_BUSY)
            return sts;
        __asm__ volatile("pause");
    }
    return GUEST_STS_TIMEOUT;
}

static u32 uv_init(void)
{
    u32 magic = mmio_r16(UV_REG_MAGIC);
    if (magic != UV_MAGIC)
        fail(0, "uefi-vars device: bad MAGIC");
    if (uv_command(UV_CMD_RESET) != 0)
        fail(0, "uefi-vars device: RESET failed");
    mmio_w32(UV_REG_BUFFER_SIZE, COMM_SIZE);
    buf_size = COMM_SIZE;
    u32 flags = mmio_r32(UV_REG_FLAGS);
    if (flags & UV_FLAG_USE_PIO) {
        use_pio = 1;
    } else {
        use_pio = 0;
        mmio_w32(UV_REG_DMA_ADDR_LO, COMM_ADDR);
        mmio_w32(UV_REG_DMA_ADDR_HI, 0);
    }
    return flags;
}

/* Moves `len` bytes (rounded up to dwords) through the PIO window, then
 * checks the device's CRC-32C against our own over the same dwords. */
static int uv_pio_transfer(u8 *buf, u32 len, int to_device)
{
    if (uv_command(UV_CMD_PIO_ZERO_OFFSET) != 0)
        return -1;
    u32 bytes = 0;
    volatile u32 *p = (volatile u32 *)buf;
    while (bytes < len) {
        if (to_device)
            mmio_w32(UV_REG_PIO_XFER, *p);
        else
            *p = mmio_r32(UV_REG_PIO_XFER);
        p++;
        bytes += 4;
    }
    u32 mine = crc32c(buf, bytes);
    u32 dev = mmio_r32(UV_REG_PIO_CRC32C);
    return mine == dev ? 0 : -1;
}

/* One MM communication of `len` bytes at COMM_ADDR; returns the device
 * status (or a GUEST_STS_* value); the reply is left at COMM_ADDR. */
static u32 uv_communicate(u32 len)
{
    u8 *buf = (u8 *)COMM_ADDR;
    if (!use_pio)
        return uv_command(UV_CMD_DMA_MM);
    /* edk2 sends whole dwords; the bytes past the request are ours (0).
     * Never more than the device's buffer (edk2's request fits its own). */
    u32 xfer = len > buf_size ? buf_size : len;
    for (u32 i = xfer; i < ((xfer + 3) & ~3u) && i < COMM_SIZE; i++)
        buf[i] = 0;
    if (uv_pio_transfer(buf, xfer, 1))
        return GUEST_STS_PIO_CRC_TX;
    u32 sts = uv_command(UV_CMD_PIO_MM);
    /* edk2 copies nothing back after an error status; the guest reads the
     * buffer back anyway, so the host sees what the device left in it. */
    if (uv_pio_transfer(buf, xfer, 0))
        return GUEST_STS_PIO_CRC_RX;
    return sts;
}

/* ---- main loop --------------------------------------------------------- */

void guest_main(void)
{
    volatile struct state *st = (volatile struct state *)STATE_ADDR;
    u32 hdr[4];

    crc_init();
    script_key = 0;
    script_size = 0;
    script_pos = 0;
    use_pio = 0;

    script_open(0);
    script_read(hdr, sizeof hdr, 0);
    if (hdr[0] != SCRIPT_MAGIC || hdr[1] != SCRIPT_VERSION)
        fail(0, "bad script header");
    u32 count = hdr[2];
    u32 nonce = hdr[3];

    u32 index = 0, offset = sizeof hdr;
    if (st->magic == STATE_MAGIC && st->nonce == nonce) {
        if (!st->expect_reset)
            fail(st->next_index, "unexpected reboot");
        index = st->next_index;
        offset = st->next_offset;
        st->boots = st->boots + 1;
    } else {
        st->magic = STATE_MAGIC;
        st->nonce = nonce;
        st->boots = 1;
    }
    st->expect_reset = 0;
    frame(FRAME_BOOT, index, st->boots, 0, 0);

    u32 flags = uv_init();
    frame(FRAME_INIT, index, flags, 0, 0);

    if (offset != sizeof hdr)
        script_open(offset);

    for (; index < count; index++) {
        u32 rec[2];
        script_read(rec, sizeof rec, index);
        u32 kind = rec[0], len = rec[1];
        u32 padded = (len + 3) & ~3u;
        if (kind == REC_RESET) {
            if (len)
                fail(index, "reset record with data");
            st->next_index = index + 1;
            st->next_offset = script_pos;
            st->expect_reset = 1;
            frame(FRAME_RESET, index, 0, 0, 0);
            machine_reset();
        }
        if (kind == REC_BUFFER_SIZE) {
            u32 size;
            if (len != 4)
                fail(index, "buffer size record without a u32");
            script_read(&size, 4, index);
            mmio_w32(UV_REG_BUFFER_SIZE, size);
            buf_size = mmio_r32(UV_REG_BUFFER_SIZE);
            frame(FRAME_BUFFER_SIZE, index, buf_size, 0, 0);
            continue;
        }
        if (kind != REC_REQUEST)
            fail(index, "unknown record type");
        if (len > COMM_SIZE)
            fail(index, "request longer than the buffer");
        script_read((void *)COMM_ADDR, padded, index);
        memcpy((void *)SHADOW_ADDR, (const void *)COMM_ADDR, len);
        u32 sts = uv_communicate(len);
        const u8 *now = (const u8 *)COMM_ADDR, *was = (const u8 *)SHADOW_ADDR;
        frame_header(FRAME_REPLY_DIFF, index, sts, diff_segments(now, was, len, 0));
        diff_segments(now, was, len, 1);
    }
    frame(FRAME_END, index, 0, 0, 0);
    quit(0x10);
}
