"""tests/plugins/hexz's NBD tests that go through ``serve``, over url= (see conftest)."""

from tests.plugins.hexz.test_nbd_exports import (  # noqa: F401
    test_default_export_is_primary,
    test_list_exports_names_every_member,
    test_member_by_export_name,
    test_member_extents,
    test_member_partial_reads_cross_blocks,
    test_member_with_nbdcopy_uri,
    test_stream_memory_serves_secondary,
    test_unknown_export_name_is_refused,
)
from tests.plugins.hexz.test_nbd_extents import (  # noqa: F401
    test_block_status_req_one,
    test_block_status_sound_and_complete,
    test_nbdinfo_map,
)
from tests.plugins.hexz.test_nbd_read import (  # noqa: F401
    test_concurrent_connections,
    test_edge_and_random_reads,
    test_empty_archive,
    test_export_properties,
    test_large_reads_across_pages,
    test_last_byte_and_past_end,
    test_many_requests_in_flight,
    test_nbdcopy_whole_image,
    test_qemu_img_compare,
    test_small_cache_still_correct,
)
