"""Agents: scaffolds that, given a workspace, a prompt and a deadline, leave `final_model/` behind."""
