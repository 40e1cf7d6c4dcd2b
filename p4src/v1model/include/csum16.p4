// Incremental Internet checksum update (RFC 1624).

#ifndef __GRAYGW_V1MODEL_CSUM16__
#define __GRAYGW_V1MODEL_CSUM16__

// The checksum hc after a 32-bit field it covers changed from old_val to
// new_val: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), one 16-bit word at a time,
// in ones' complement (end-around carry). Five 16-bit terms fit in 19 bits; two
// folds bring any such sum back to 16 bits. Same arithmetic as
// model.UpdateChecksum32.
bit<16> csum16_replace32(in bit<16> hc, in bit<32> old_val, in bit<32> new_val) {
    bit<32> sum = (bit<32>)(~hc)
                + (bit<32>)(~old_val[31:16]) + (bit<32>)(~old_val[15:0])
                + (bit<32>)new_val[31:16]    + (bit<32>)new_val[15:0];
    sum = (sum & 32w0xFFFF) + (sum >> 16);
    sum = (sum & 32w0xFFFF) + (sum >> 16);
    return ~sum[15:0];
}

// The same for a 128-bit field (an IPv6 address): the eight 16-bit words of
// old_val out, those of new_val in. Seventeen 16-bit terms fit in 21 bits;
// two folds still suffice. Same arithmetic as the model's.
bit<16> csum16_replace128(in bit<16> hc, in bit<128> old_val, in bit<128> new_val) {
    bit<32> sum = (bit<32>)(~hc)
                + (bit<32>)(~old_val[127:112]) + (bit<32>)(~old_val[111:96])
                + (bit<32>)(~old_val[95:80])   + (bit<32>)(~old_val[79:64])
                + (bit<32>)(~old_val[63:48])   + (bit<32>)(~old_val[47:32])
                + (bit<32>)(~old_val[31:16])   + (bit<32>)(~old_val[15:0])
                + (bit<32>)new_val[127:112]    + (bit<32>)new_val[111:96]
                + (bit<32>)new_val[95:80]      + (bit<32>)new_val[79:64]
                + (bit<32>)new_val[63:48]      + (bit<32>)new_val[47:32]
                + (bit<32>)new_val[31:16]      + (bit<32>)new_val[15:0];
    sum = (sum & 32w0xFFFF) + (sum >> 16);
    sum = (sum & 32w0xFFFF) + (sum >> 16);
    return ~sum[15:0];
}

#endif // __GRAYGW_V1MODEL_CSUM16__
