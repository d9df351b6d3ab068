import ArgumentParser
import Foundation
import GatehouseConsole

/// `gatehouse console hash-password`: the `password_hash` for a console user in
/// `admin.console.users`. The password is read from standard input so it stays out of the
/// shell history and the process list.
struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console", abstract: "Web console helpers.", subcommands: [HashPassword.self])

    struct HashPassword: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hash-password",
            abstract: "Read a password on standard input (one line) and print its scrypt hash for admin.console.users.")

        func run() throws {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                FileHandle.standardError.write(Data("no password on standard input (e.g. read -rs P; echo \"$P\" | gatehouse console hash-password)\n".utf8))
                throw ExitCode(2)
            }
            print(try PasswordCheck.hash(line).description)
        }
    }
}
