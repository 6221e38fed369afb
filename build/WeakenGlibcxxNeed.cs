using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

// Marks the GLIBCXX_3.4.32 version need of libLibTorchSharp.so weak; see LibTorchSharpGlibcxx.targets.
public class WeakenGlibcxxNeed : Task
{
    const string Version = "GLIBCXX_3.4.32";
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public string Directory { get; set; } = "";

    /// <summary>auto: only where the system libstdc++ lacks the version; always: wherever the build runs; off: never.</summary>
    [Required] public string Mode { get; set; } = "auto";

    public override bool Execute()
    {
        var mode = Mode.Trim().ToLowerInvariant();
        if (mode != "auto" && mode != "always" && mode != "off")
        {
            Log.LogError($"CoeffTuneGlibcxxFix must be auto, always or off, not '{Mode}'.");
            return false;
        }
        if (mode == "off" || !System.IO.Directory.Exists(Directory)) return true;
        var libs = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        if (libs.Length == 0) return true;
        if (mode == "auto" && SystemHasVersion()) return true;
        var why = mode == "auto" ? "system libstdc++ lacks it" : "CoeffTuneGlibcxxFix=always";
        foreach (var lib in libs)
        {
            try
            {
                if (Weaken(lib)) Log.LogMessage(MessageImportance.High, $"Marked the {Version} need of {lib} weak ({why}).");
            }
            catch (Exception e)
            {
                Log.LogWarning($"Could not patch {lib}: {e.Message}");
            }
        }
        return true;
    }

    static bool SystemHasVersion()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
        };
        var found = candidates.FirstOrDefault(File.Exists);
        if (found == null) return true; // not a glibc Linux we know: leave the library alone
        var bytes = File.ReadAllBytes(found);
        var needle = Encoding.ASCII.GetBytes(Version + "\0");
        return IndexOf(bytes, needle) >= 0;
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i <= hay.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    // Walks the ELF64 section headers to .gnu.version_r and flags the matching Elf64_Vernaux entry.
    static bool Weaken(string path)
    {
        var data = File.ReadAllBytes(path);
        if (data.Length < 64 || data[0] != 0x7f || data[1] != (byte)'E' || data[4] != 2 || data[5] != 1) return false;
        ulong shoff = BitConverter.ToUInt64(data, 0x28);
        int shentsize = BitConverter.ToUInt16(data, 0x3A), shnum = BitConverter.ToUInt16(data, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)shoff + s * shentsize;
            if (BitConverter.ToUInt32(data, sh + 4) != ShtGnuVerneed) continue;
            int link = (int)BitConverter.ToUInt32(data, sh + 40);
            int strOff = (int)BitConverter.ToUInt64(data, (int)shoff + link * shentsize + 24);
            int off = (int)BitConverter.ToUInt64(data, sh + 24);
            bool changed = false;
            while (true)
            {
                int cnt = BitConverter.ToUInt16(data, off + 2);
                int aux = off + (int)BitConverter.ToUInt32(data, off + 8);
                for (int a = 0; a < cnt; a++)
                {
                    int nameOff = strOff + (int)BitConverter.ToUInt32(data, aux + 8);
                    int end = Array.IndexOf(data, (byte)0, nameOff);
                    var name = Encoding.ASCII.GetString(data, nameOff, end - nameOff);
                    ushort flags = BitConverter.ToUInt16(data, aux + 4);
                    if (name == Version && (flags & VerFlgWeak) == 0)
                    {
                        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(data, aux + 4);
                        changed = true;
                    }
                    uint nextAux = BitConverter.ToUInt32(data, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint next = BitConverter.ToUInt32(data, off + 12);
                if (next == 0) break;
                off += (int)next;
            }
            if (!changed) return false;
            // A new file renamed over the old one: if the output copy is a hard link or a symbolic link
            // into the NuGet cache, the link is replaced and the cache keeps its original bytes.
            var tmp = path + ".weak.tmp";
            File.WriteAllBytes(tmp, data);
            File.Replace(tmp, path, null);
            return true;
        }
        return false;
    }
}
