/**
 * The country calling codes ITU-T E.164 assigns to countries and territories (API.md: each code in
 * ALLOWED_COUNTRY_CODES must be a real assigned one), so a typo such as "19" or "910" stops the start instead of
 * silently refusing every customer. Non-geographic codes (800 freephone, 870 Inmarsat, 881–883 global services,
 * 979 premium rate, …) are left out: they are not mobile numbers of a country. Spare and withdrawn codes (210,
 * 671, 684, 388, …) are not listed.
 */
export const ASSIGNED_CALLING_CODES: ReadonlySet<string> = new Set(
  [
    // zone 1 (NANP) and 7
    '1 7',
    // zone 2: Africa and a few islands
    '20 27 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239',
    '240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 257 258 260 261 262 263 264 265 266',
    '267 268 269 290 291 297 298 299',
    // zones 3 and 4: Europe
    '30 31 32 33 34 36 39 350 351 352 353 354 355 356 357 358 359 370 371 372 373 374 375 376 377 378 379 380',
    '381 382 383 385 386 387 389 40 41 43 44 45 46 47 48 49 420 421 423',
    // zone 5: the Americas outside NANP
    '51 52 53 54 55 56 57 58 500 501 502 503 504 505 506 507 508 509 590 591 592 593 594 595 596 597 598 599',
    // zone 6: South-East Asia and Oceania
    '60 61 62 63 64 65 66 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 689 690 691 692',
    // zone 8: East Asia
    '81 82 84 86 850 852 853 855 856 880 886',
    // zone 9: West, Central and South Asia
    '90 91 92 93 94 95 98 960 961 962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 992 993 994 995',
    '996 998',
  ]
    .join(' ')
    .split(' '),
);
