//! A launch template version's data, as DescribeLaunchTemplateVersions answers it, turned into
//! the request that makes a version with the same data: every field, nested ones too, converted
//! one by one. CreateLaunchTemplateVersion also names the version it copies (`SourceVersion`),
//! so on AWS whatever a request cannot carry is inherited from it; an emulator that ignores
//! `SourceVersion` still gets everything below.
//!
//! Not carried, because no request can set them (AWS fills them in itself):
//! - `MetadataOptions.State`: whether AWS has applied the options yet;
//! - `Operator.Managed` and `Operator.HiddenByDefault`: set for the service that manages the
//!   template (its `Principal` is carried);
//! - an IPv6 address's `IsPrimaryIpv6`: the interface's `PrimaryIpv6` says the same.
//!
//! Not sent: Elastic Graphics and Elastic Inference accelerators, which AWS no longer accepts in
//! a request (the SDK marks them deprecated); a version that still has them passes them on
//! through `SourceVersion`.

use aws_sdk_ec2::types as ec2;

/// `data` with only its image changed to `image`.
pub(super) fn with_image(
    data: &ec2::ResponseLaunchTemplateData,
    image: &str,
) -> ec2::RequestLaunchTemplateData {
    ec2::RequestLaunchTemplateData::builder()
        .set_kernel_id(data.kernel_id.clone())
        .set_ebs_optimized(data.ebs_optimized)
        .set_iam_instance_profile(data.iam_instance_profile.as_ref().map(|p| {
            ec2::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .set_arn(p.arn.clone())
                .set_name(p.name.clone())
                .build()
        }))
        .set_block_device_mappings(all(&data.block_device_mappings, block_device_mapping))
        .set_network_interfaces(all(&data.network_interfaces, network_interface))
        .image_id(image)
        .set_instance_type(data.instance_type.clone())
        .set_key_name(data.key_name.clone())
        .set_monitoring(data.monitoring.as_ref().map(|m| {
            ec2::LaunchTemplatesMonitoringRequest::builder()
                .set_enabled(m.enabled)
                .build()
        }))
        .set_placement(data.placement.as_ref().map(placement))
        .set_ram_disk_id(data.ram_disk_id.clone())
        .set_disable_api_termination(data.disable_api_termination)
        .set_instance_initiated_shutdown_behavior(data.instance_initiated_shutdown_behavior.clone())
        // Base64 in the answer, as the request wants it.
        .set_user_data(data.user_data.clone())
        .set_tag_specifications(all(&data.tag_specifications, |t| {
            ec2::LaunchTemplateTagSpecificationRequest::builder()
                .set_resource_type(t.resource_type.clone())
                .set_tags(t.tags.clone())
                .build()
        }))
        .set_security_group_ids(data.security_group_ids.clone())
        .set_security_groups(data.security_groups.clone())
        .set_instance_market_options(data.instance_market_options.as_ref().map(market_options))
        .set_credit_specification(data.credit_specification.as_ref().map(|c| {
            ec2::CreditSpecificationRequest::builder()
                .set_cpu_credits(c.cpu_credits.clone())
                .build()
        }))
        .set_cpu_options(data.cpu_options.as_ref().map(|c| {
            ec2::LaunchTemplateCpuOptionsRequest::builder()
                .set_core_count(c.core_count)
                .set_threads_per_core(c.threads_per_core)
                .set_amd_sev_snp(c.amd_sev_snp.clone())
                .set_nested_virtualization(c.nested_virtualization.clone())
                .build()
        }))
        .set_capacity_reservation_specification(
            data.capacity_reservation_specification
                .as_ref()
                .map(capacity_reservation),
        )
        .set_license_specifications(all(&data.license_specifications, |l| {
            ec2::LaunchTemplateLicenseConfigurationRequest::builder()
                .set_license_configuration_arn(l.license_configuration_arn.clone())
                .build()
        }))
        .set_hibernation_options(data.hibernation_options.as_ref().map(|h| {
            ec2::LaunchTemplateHibernationOptionsRequest::builder()
                .set_configured(h.configured)
                .build()
        }))
        .set_metadata_options(data.metadata_options.as_ref().map(|m| {
            ec2::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .set_http_tokens(m.http_tokens.clone())
                .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
                .set_http_endpoint(m.http_endpoint.clone())
                .set_http_protocol_ipv6(m.http_protocol_ipv6.clone())
                .set_instance_metadata_tags(m.instance_metadata_tags.clone())
                .build()
        }))
        .set_enclave_options(data.enclave_options.as_ref().map(|e| {
            ec2::LaunchTemplateEnclaveOptionsRequest::builder()
                .set_enabled(e.enabled)
                .build()
        }))
        .set_instance_requirements(data.instance_requirements.as_ref().map(requirements))
        .set_private_dns_name_options(data.private_dns_name_options.as_ref().map(|p| {
            ec2::LaunchTemplatePrivateDnsNameOptionsRequest::builder()
                .set_hostname_type(p.hostname_type.clone())
                .set_enable_resource_name_dns_a_record(p.enable_resource_name_dns_a_record)
                .set_enable_resource_name_dns_aaaa_record(p.enable_resource_name_dns_aaaa_record)
                .build()
        }))
        .set_maintenance_options(data.maintenance_options.as_ref().map(|m| {
            ec2::LaunchTemplateInstanceMaintenanceOptionsRequest::builder()
                .set_auto_recovery(m.auto_recovery.clone())
                .build()
        }))
        .set_disable_api_stop(data.disable_api_stop)
        .set_operator(data.operator.as_ref().map(|o| {
            ec2::OperatorRequest::builder()
                .set_principal(o.principal.clone())
                .build()
        }))
        .set_network_performance_options(data.network_performance_options.as_ref().map(|n| {
            ec2::LaunchTemplateNetworkPerformanceOptionsRequest::builder()
                .set_bandwidth_weighting(n.bandwidth_weighting.clone())
                .build()
        }))
        .set_secondary_interfaces(all(&data.secondary_interfaces, secondary_interface))
        .build()
}

/// Each element converted; absent stays absent, and an empty list stays empty.
fn all<T, U>(list: &Option<Vec<T>>, convert: impl Fn(&T) -> U) -> Option<Vec<U>> {
    list.as_ref().map(|l| l.iter().map(convert).collect())
}

fn block_device_mapping(
    m: &ec2::LaunchTemplateBlockDeviceMapping,
) -> ec2::LaunchTemplateBlockDeviceMappingRequest {
    ec2::LaunchTemplateBlockDeviceMappingRequest::builder()
        .set_device_name(m.device_name.clone())
        .set_virtual_name(m.virtual_name.clone())
        .set_ebs(m.ebs.as_ref().map(|e| {
            ec2::LaunchTemplateEbsBlockDeviceRequest::builder()
                .set_encrypted(e.encrypted)
                .set_delete_on_termination(e.delete_on_termination)
                .set_iops(e.iops)
                .set_kms_key_id(e.kms_key_id.clone())
                .set_snapshot_id(e.snapshot_id.clone())
                .set_volume_size(e.volume_size)
                .set_volume_type(e.volume_type.clone())
                .set_throughput(e.throughput)
                .set_volume_initialization_rate(e.volume_initialization_rate)
                .set_ebs_card_index(e.ebs_card_index)
                .build()
        }))
        .set_no_device(m.no_device.clone())
        .build()
}

fn network_interface(
    n: &ec2::LaunchTemplateInstanceNetworkInterfaceSpecification,
) -> ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest {
    ec2::LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
        .set_associate_carrier_ip_address(n.associate_carrier_ip_address)
        .set_associate_public_ip_address(n.associate_public_ip_address)
        .set_delete_on_termination(n.delete_on_termination)
        .set_description(n.description.clone())
        .set_device_index(n.device_index)
        .set_groups(n.groups.clone())
        .set_interface_type(n.interface_type.clone())
        .set_ipv6_address_count(n.ipv6_address_count)
        .set_ipv6_addresses(all(&n.ipv6_addresses, |a| {
            ec2::InstanceIpv6AddressRequest::builder()
                .set_ipv6_address(a.ipv6_address.clone())
                .build()
        }))
        .set_network_interface_id(n.network_interface_id.clone())
        .set_private_ip_address(n.private_ip_address.clone())
        .set_private_ip_addresses(n.private_ip_addresses.clone())
        .set_secondary_private_ip_address_count(n.secondary_private_ip_address_count)
        .set_subnet_id(n.subnet_id.clone())
        .set_network_card_index(n.network_card_index)
        .set_ipv4_prefixes(all(&n.ipv4_prefixes, |p| {
            ec2::Ipv4PrefixSpecificationRequest::builder()
                .set_ipv4_prefix(p.ipv4_prefix.clone())
                .build()
        }))
        .set_ipv4_prefix_count(n.ipv4_prefix_count)
        .set_ipv6_prefixes(all(&n.ipv6_prefixes, |p| {
            ec2::Ipv6PrefixSpecificationRequest::builder()
                .set_ipv6_prefix(p.ipv6_prefix.clone())
                .build()
        }))
        .set_ipv6_prefix_count(n.ipv6_prefix_count)
        .set_primary_ipv6(n.primary_ipv6)
        .set_ena_srd_specification(n.ena_srd_specification.as_ref().map(|s| {
            ec2::EnaSrdSpecificationRequest::builder()
                .set_ena_srd_enabled(s.ena_srd_enabled)
                .set_ena_srd_udp_specification(s.ena_srd_udp_specification.as_ref().map(|u| {
                    ec2::EnaSrdUdpSpecificationRequest::builder()
                        .set_ena_srd_udp_enabled(u.ena_srd_udp_enabled)
                        .build()
                }))
                .build()
        }))
        .set_connection_tracking_specification(n.connection_tracking_specification.as_ref().map(
            |c| {
                ec2::ConnectionTrackingSpecificationRequest::builder()
                    .set_tcp_established_timeout(c.tcp_established_timeout)
                    .set_udp_stream_timeout(c.udp_stream_timeout)
                    .set_udp_timeout(c.udp_timeout)
                    .build()
            },
        ))
        .set_ena_queue_count(n.ena_queue_count)
        .build()
}

fn placement(p: &ec2::LaunchTemplatePlacement) -> ec2::LaunchTemplatePlacementRequest {
    ec2::LaunchTemplatePlacementRequest::builder()
        .set_availability_zone(p.availability_zone.clone())
        .set_availability_zone_id(p.availability_zone_id.clone())
        .set_affinity(p.affinity.clone())
        .set_group_name(p.group_name.clone())
        .set_host_id(p.host_id.clone())
        .set_tenancy(p.tenancy.clone())
        .set_spread_domain(p.spread_domain.clone())
        .set_host_resource_group_arn(p.host_resource_group_arn.clone())
        .set_partition_number(p.partition_number)
        .set_group_id(p.group_id.clone())
        .build()
}

fn market_options(
    m: &ec2::LaunchTemplateInstanceMarketOptions,
) -> ec2::LaunchTemplateInstanceMarketOptionsRequest {
    ec2::LaunchTemplateInstanceMarketOptionsRequest::builder()
        .set_market_type(m.market_type.clone())
        .set_spot_options(m.spot_options.as_ref().map(|s| {
            ec2::LaunchTemplateSpotMarketOptionsRequest::builder()
                .set_max_price(s.max_price.clone())
                .set_spot_instance_type(s.spot_instance_type.clone())
                .set_block_duration_minutes(s.block_duration_minutes)
                .set_valid_until(s.valid_until)
                .set_instance_interruption_behavior(s.instance_interruption_behavior.clone())
                .build()
        }))
        .build()
}

fn capacity_reservation(
    c: &ec2::LaunchTemplateCapacityReservationSpecificationResponse,
) -> ec2::LaunchTemplateCapacityReservationSpecificationRequest {
    ec2::LaunchTemplateCapacityReservationSpecificationRequest::builder()
        .set_capacity_reservation_preference(c.capacity_reservation_preference.clone())
        .set_capacity_reservation_target(c.capacity_reservation_target.as_ref().map(|t| {
            ec2::CapacityReservationTarget::builder()
                .set_capacity_reservation_id(t.capacity_reservation_id.clone())
                .set_capacity_reservation_resource_group_arn(
                    t.capacity_reservation_resource_group_arn.clone(),
                )
                .build()
        }))
        .build()
}

fn secondary_interface(
    s: &ec2::LaunchTemplateInstanceSecondaryInterfaceSpecification,
) -> ec2::LaunchTemplateInstanceSecondaryInterfaceSpecificationRequest {
    ec2::LaunchTemplateInstanceSecondaryInterfaceSpecificationRequest::builder()
        .set_delete_on_termination(s.delete_on_termination)
        .set_device_index(s.device_index)
        .set_private_ip_addresses(all(&s.private_ip_addresses, |a| {
            ec2::SecondaryInterfacePrivateIpAddressSpecificationRequest::builder()
                .set_private_ip_address(a.private_ip_address.clone())
                .build()
        }))
        .set_private_ip_address_count(s.private_ip_address_count)
        .set_secondary_subnet_id(s.secondary_subnet_id.clone())
        .set_interface_type(s.interface_type.clone())
        .set_network_card_index(s.network_card_index)
        .build()
}

/// A `{min, max}` range of the answer as the same range of the request.
macro_rules! range {
    ($from:expr, $to:ident) => {
        $from
            .as_ref()
            .map(|r| ec2::$to::builder().set_min(r.min).set_max(r.max).build())
    };
}

fn requirements(r: &ec2::InstanceRequirements) -> ec2::InstanceRequirementsRequest {
    ec2::InstanceRequirementsRequest::builder()
        .set_v_cpu_count(range!(r.v_cpu_count, VCpuCountRangeRequest))
        .set_memory_mib(range!(r.memory_mib, MemoryMiBRequest))
        .set_cpu_manufacturers(r.cpu_manufacturers.clone())
        .set_memory_gib_per_v_cpu(range!(r.memory_gib_per_v_cpu, MemoryGiBPerVCpuRequest))
        .set_excluded_instance_types(r.excluded_instance_types.clone())
        .set_instance_generations(r.instance_generations.clone())
        .set_spot_max_price_percentage_over_lowest_price(
            r.spot_max_price_percentage_over_lowest_price,
        )
        .set_on_demand_max_price_percentage_over_lowest_price(
            r.on_demand_max_price_percentage_over_lowest_price,
        )
        .set_bare_metal(r.bare_metal.clone())
        .set_burstable_performance(r.burstable_performance.clone())
        .set_require_hibernate_support(r.require_hibernate_support)
        .set_network_interface_count(range!(
            r.network_interface_count,
            NetworkInterfaceCountRequest
        ))
        .set_local_storage(r.local_storage.clone())
        .set_local_storage_types(r.local_storage_types.clone())
        .set_total_local_storage_gb(range!(r.total_local_storage_gb, TotalLocalStorageGbRequest))
        .set_baseline_ebs_bandwidth_mbps(range!(
            r.baseline_ebs_bandwidth_mbps,
            BaselineEbsBandwidthMbpsRequest
        ))
        .set_accelerator_types(r.accelerator_types.clone())
        .set_accelerator_count(range!(r.accelerator_count, AcceleratorCountRequest))
        .set_accelerator_manufacturers(r.accelerator_manufacturers.clone())
        .set_accelerator_names(r.accelerator_names.clone())
        .set_accelerator_total_memory_mib(range!(
            r.accelerator_total_memory_mib,
            AcceleratorTotalMemoryMiBRequest
        ))
        .set_network_bandwidth_gbps(range!(
            r.network_bandwidth_gbps,
            NetworkBandwidthGbpsRequest
        ))
        .set_allowed_instance_types(r.allowed_instance_types.clone())
        .set_max_spot_price_as_percentage_of_optimal_on_demand_price(
            r.max_spot_price_as_percentage_of_optimal_on_demand_price,
        )
        .set_baseline_performance_factors(r.baseline_performance_factors.as_ref().map(|f| {
            ec2::BaselinePerformanceFactorsRequest::builder()
                .set_cpu(f.cpu.as_ref().map(|c| {
                    ec2::CpuPerformanceFactorRequest::builder()
                        .set_references(all(&c.references, |r| {
                            ec2::PerformanceFactorReferenceRequest::builder()
                                .set_instance_family(r.instance_family.clone())
                                .build()
                        }))
                        .build()
                }))
                .build()
        }))
        .set_require_encryption_in_transit(r.require_encryption_in_transit)
        .build()
}
