import Testing

@testable import GatehouseProfiles

@Test("the profile format version is 1")
func profileFormatVersion() {
    #expect(ProfileFormat.version == 1)
}
