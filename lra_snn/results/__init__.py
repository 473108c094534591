"""Result files and the leaderboard built from them."""
