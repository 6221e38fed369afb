using System.Text;

namespace CoeffTune.Tests.Packaging;

/// <summary>Reads the version needs (.gnu.version_r) of an ELF64 little-endian shared library.</summary>
internal static class ElfVersionNeeds
{
    public const string Glibcxx = "GLIBCXX_3.4.32";
    public const ushort Weak = 0x2;
    private const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>The vna_flags of the need for <paramref name="version"/>, or null when the library does not need it.</summary>
    public static ushort? Flags(string path, string version)
    {
        var data = File.ReadAllBytes(path);
        if (data.Length < 64 || data[0] != 0x7f || data[1] != (byte)'E' || data[4] != 2 || data[5] != 1)
            throw new InvalidDataException($"{path} is not a little-endian ELF64 file");
        long shoff = (long)BitConverter.ToUInt64(data, 0x28);
        int shentsize = BitConverter.ToUInt16(data, 0x3A), shnum = BitConverter.ToUInt16(data, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)(shoff + s * shentsize);
            if (BitConverter.ToUInt32(data, sh + 4) != ShtGnuVerneed) continue;
            int link = (int)BitConverter.ToUInt32(data, sh + 40);
            int strings = (int)BitConverter.ToUInt64(data, (int)shoff + link * shentsize + 24);
            int need = (int)BitConverter.ToUInt64(data, sh + 24);
            while (true)
            {
                int count = BitConverter.ToUInt16(data, need + 2);
                int aux = need + (int)BitConverter.ToUInt32(data, need + 8);
                for (int a = 0; a < count; a++)
                {
                    int name = strings + (int)BitConverter.ToUInt32(data, aux + 8);
                    int end = Array.IndexOf(data, (byte)0, name);
                    if (Encoding.ASCII.GetString(data, name, end - name) == version) return BitConverter.ToUInt16(data, aux + 4);
                    uint nextAux = BitConverter.ToUInt32(data, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint next = BitConverter.ToUInt32(data, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return null;
    }

    /// <summary>Whether the library's need for <paramref name="version"/> is weak; fails when it has no such need.</summary>
    public static bool IsWeak(string path, string version) =>
        ((Flags(path, version) ?? throw new InvalidDataException($"{path} does not need {version}")) & Weak) != 0;

    /// <summary>Whether this machine's libstdc++ defines <paramref name="version"/> (true when none is found where glibc systems keep it).</summary>
    public static bool SystemLibstdcxxHas(string version)
    {
        string[] candidates =
        [
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        ];
        var found = candidates.FirstOrDefault(File.Exists);
        if (found is null) return true;
        return File.ReadAllBytes(found).AsSpan().IndexOf(Encoding.ASCII.GetBytes(version + "\0")) >= 0;
    }
}
